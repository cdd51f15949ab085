"""Plain-text tables for the ``llama`` commands (boxed with ``+``, ``-`` and ``|``)."""

from __future__ import annotations

import sys
import textwrap
from typing import Iterable, Optional, Sequence, TextIO

BOLD = "\x1b[1m"
RESET = "\x1b[0m"


def _cell_lines(text: str, width: int) -> list[str]:
    """Splits a cell on its own newlines, then wraps each line at word breaks to `width`."""
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            out.append("")
            continue
        indent = line[: len(line) - len(line.lstrip())]
        # Keep JSON indentation visible on continuation lines too.
        wrapped = textwrap.wrap(
            line,
            width,
            subsequent_indent=indent if len(indent) < width // 2 else "",
            break_long_words=False,
            break_on_hyphens=False,
            replace_whitespace=False,
            drop_whitespace=True,
        )
        out.extend(wrapped or [""])
    return out or [""]


def _natural_width(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def render_table(
    rows: Iterable[Sequence[object]],
    headers: Optional[Sequence[str]] = None,
    separate_rows: bool = False,
    max_width: int = 80,
    bold_header: bool = False,
) -> str:
    """Formats rows as a boxed table. Cells may hold several lines; none grows past `max_width`."""
    text_rows = [["" if c is None else str(c) for c in row] for row in rows]
    all_rows = ([list(headers)] if headers else []) + text_rows
    if not all_rows:
        return ""
    ncols = max(len(r) for r in all_rows)
    for r in all_rows:
        r.extend([""] * (ncols - len(r)))
    widths = [min(max(_natural_width(r[i]) for r in all_rows), max_width) for i in range(ncols)]
    widths = [max(w, 1) for w in widths]
    # Very long words (URLs, JSON keys) may still exceed the cap; let the column grow for them.
    for i in range(ncols):
        for r in all_rows:
            for line in _cell_lines(r[i], widths[i]):
                widths[i] = max(widths[i], len(line))

    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row: Sequence[str], bold: bool = False) -> list[str]:
        cells = [_cell_lines(c, w) for c, w in zip(row, widths)]
        height = max(len(c) for c in cells)
        lines = []
        for k in range(height):
            parts = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(cells, widths)]
            line = "| " + " | ".join(parts) + " |"
            lines.append(f"{BOLD}{line}{RESET}" if bold else line)
        return lines

    out = [rule]
    if headers:
        out += fmt(all_rows[0], bold=bold_header)
        out.append(rule)
    for i, row in enumerate(text_rows):
        out += fmt(row)
        if separate_rows or i == len(text_rows) - 1:
            out.append(rule)
    return "\n".join(out)


def print_table(
    rows: Iterable[Sequence[object]],
    headers: Optional[Sequence[str]] = None,
    separate_rows: bool = False,
    max_width: int = 80,
    file: Optional[TextIO] = None,
) -> None:
    stream = file if file is not None else sys.stdout
    bold = bool(getattr(stream, "isatty", lambda: False)())
    text = render_table(rows, headers, separate_rows=separate_rows, max_width=max_width, bold_header=bold)
    if text:
        print(text, file=stream)

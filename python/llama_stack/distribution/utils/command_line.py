"""A small command line for a function, read off its signature: the ``main`` of each API's
client module (``python -m llama_stack.apis.inference.client HOST PORT --stream false``).

Parameters without a default may be given positionally or as flags; every parameter is a flag
``--name VALUE`` or ``--name=VALUE`` (dashes and underscores alike). A boolean parameter is
switched on by ``--name`` alone, off by ``--noname``, or set with ``--name=false``.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class UsageError(Exception):
    pass


def _target_type(annotation: Any) -> Any:
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(
            annotation.replace("Optional[", "").rstrip("]"), str
        )
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else str
    return annotation if annotation in (int, float, bool, str) else str


def _convert(name: str, text: str, kind: Any) -> Any:
    if kind is bool:
        value = text.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise UsageError(f"--{name}: expected true or false, got {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"--{name}: expected {kind.__name__}, got {text!r}") from None


def _usage(func: Callable[..., Any], prog: str) -> str:
    parts = []
    for p in inspect.signature(func).parameters.values():
        if p.default is inspect.Parameter.empty:
            parts.append(p.name.upper())
        else:
            parts.append(f"[--{p.name} {p.default!r}]")
    return f"usage: {prog} {' '.join(parts)}"


def parse(func: Callable[..., Any], argv: Sequence[str]) -> Dict[str, Any]:
    """The keyword arguments ``argv`` gives ``func``; raises ``UsageError``."""
    params = inspect.signature(func).parameters
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        hints = {}
    kinds = {name: _target_type(hints.get(name, p.annotation)) for name, p in params.items()}
    values: Dict[str, Any] = {}
    positional: List[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or len(arg) == 2:
            positional.append(arg)
            continue
        name, eq, text = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name not in params and name.startswith("no") and kinds.get(name[2:]) is bool and not eq:
            values[name[2:]] = False
            continue
        if name not in params:
            raise UsageError(f"unknown flag --{name}; flags: {', '.join('--' + n for n in params)}")
        if not eq:
            if kinds[name] is bool and (i >= len(args) or args[i].strip().lower() not in _TRUE | _FALSE):
                values[name] = True
                continue
            if i >= len(args):
                raise UsageError(f"--{name} needs a value")
            text = args[i]
            i += 1
        values[name] = _convert(name, text, kinds[name])
    free = [n for n in params if n not in values]
    if len(positional) > len(free):
        raise UsageError(f"too many arguments: {' '.join(positional[len(free):])}")
    for name, text in zip(free, positional):
        values[name] = _convert(name, text, kinds[name])
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in values]
    if missing:
        raise UsageError(f"missing {', '.join(m.upper() for m in missing)}")
    return values


def run(func: Callable[..., Any], argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Calls ``func`` with the command line; prints usage and returns 2 on a bad one."""
    prog = prog or (func.__module__ if func.__module__ != "__main__" else sys.argv[0])
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(_usage(func, f"python -m {prog}"))
        return 0
    try:
        kwargs = parse(func, args)
    except UsageError as e:
        print(f"{_usage(func, f'python -m {prog}')}\nerror: {e}", file=sys.stderr)
        return 2
    try:
        func(**kwargs)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # A server that is down or answers with an error is reported in one line.
        import httpx

        if isinstance(e, (httpx.HTTPError, OSError)):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise
    return 0


def cprint(text: Any, color: Optional[str] = None, end: str = "\n", attrs: Optional[List[str]] = None, flush: bool = False) -> None:
    """termcolor's ``cprint`` when it is installed, else plain ``print``."""
    try:
        from termcolor import cprint as colored_print
    except ImportError:
        print(text, end=end, flush=flush)
        return
    colored_print(text, color=color, end=end, attrs=attrs, flush=flush)

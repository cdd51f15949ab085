"""Entry point of the ``llama`` command: builds the argparse tree and runs the chosen command."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from llama_stack.cli.common import CliError


def build_parser() -> argparse.ArgumentParser:
    from llama_stack.cli import model, stack

    parser = argparse.ArgumentParser(
        prog="llama",
        description="Command line of Llama Stack: inspect models, build, configure and run a stack.",
    )
    parser.set_defaults(func=lambda _args: parser.print_help())
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND")
    model.register(sub)
    stack.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `llama model list | head` closes the pipe early; that is not a failure. Point stdout
        # at /dev/null so the flush at exit does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

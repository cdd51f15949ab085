"""Starts the HTTP server of a run config::

    python -m llama_stack.distribution.server.server --yaml_config run.yaml --port 5000

Flags: ``--yaml_config PATH`` (default ``llamastack-run.yaml``), ``--port N`` (default 5000),
``--disable_ipv6`` (listen on IPv4 only) and ``--host ADDR``. Dashes and underscores are
interchangeable in flag names, a boolean flag also takes ``=true``/``=false`` and the
``--no<flag>`` form, and the config path and port may be given positionally. This is the same
server as ``llama stack run``; it stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

DEFAULT_YAML_CONFIG = "llamastack-run.yaml"
DEFAULT_PORT = 5000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _normalise(argv: Sequence[str]) -> List[str]:
    """Flag names with underscores as dashes; ``--nodisable_ipv6`` as ``--disable-ipv6=false``."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            name = name.replace("_", "-")
            if name == "nodisable-ipv6" and not eq:
                out.append("--disable-ipv6=false")
                continue
            out.append(f"--{name}{eq}{value}")
        else:
            out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llama_stack.distribution.server.server",
        description="Serve the APIs of a run config over HTTP until interrupted (Ctrl-C or SIGTERM).",
    )
    p.add_argument("positional_config", nargs="?", metavar="YAML_CONFIG", help=argparse.SUPPRESS)
    p.add_argument("positional_port", nargs="?", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--yaml-config", "--yaml_config", dest="yaml_config", metavar="PATH",
                   help=f"run config to serve (default: {DEFAULT_YAML_CONFIG})")
    p.add_argument("--port", type=int, default=None, help=f"port to listen on (default: {DEFAULT_PORT})")
    p.add_argument("--host", default=None, help="address to listen on (default: all interfaces)")
    p.add_argument("--disable-ipv6", "--disable_ipv6", dest="disable_ipv6", nargs="?", const=True, default=False,
                   type=_bool, metavar="BOOL", help="listen on IPv4 only")
    return p


def _config_text(path: Path) -> str:
    """The run config to hand to the core; older formats are upgraded first."""
    from llama_stack.cli.common import load_yaml_mapping, read_text

    text = read_text(path)
    data = load_yaml_mapping(text, str(path))
    if any(k in data for k in ("routing_table", "api_providers", "provider_map", "apis_to_serve")):
        from llama_stack.distribution.configure import parse_and_maybe_upgrade_config

        return parse_and_maybe_upgrade_config(data).model_dump_json()
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    from llama_stack.cli.common import CliError, core_function

    parser = build_parser()
    args = parser.parse_args(_normalise(sys.argv[1:] if argv is None else argv))
    if args.positional_config and args.yaml_config:
        parser.error("give the run config either positionally or with --yaml_config, not both")
    if args.positional_port is not None and args.port is not None:
        parser.error("give the port either positionally or with --port, not both")
    path = Path(args.yaml_config or args.positional_config or DEFAULT_YAML_CONFIG).expanduser()
    port = args.port if args.port is not None else args.positional_port
    port = DEFAULT_PORT if port is None else port
    if not 0 < port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {port}")
    try:
        if not path.is_file():
            raise CliError(f"run config `{path}` does not exist" if not path.exists() else f"`{path}` is not a file")
        try:
            text = _config_text(path)
        except ValueError as e:
            raise CliError(f"`{path}`: {e}") from None
        serve = core_function("serve")
        print(f"Using run config `{path}`", file=sys.stderr, flush=True)
        try:
            serve(config_yaml=text, host=args.host, port=port, disable_ipv6=args.disable_ipv6, source=str(path))
        except KeyboardInterrupt:
            return 0
        except ValueError as e:
            raise CliError(str(e)) from None
        except OSError as e:
            raise CliError(f"cannot start the server: {e}") from None
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())

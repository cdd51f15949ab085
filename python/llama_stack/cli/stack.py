"""``llama stack``: build, configure and run a stack, and list its APIs and provider types."""

from __future__ import annotations

import argparse
import sys

from llama_stack.cli.common import ALL_APIS, BUILT_IN_DEFAULT, PROVIDABLE_APIS, ROUTED_BY, CliError


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "stack",
        prog="llama stack",
        help="build, configure and run a stack",
        description="Build, configure and run a Llama Stack server.",
    )
    parser.set_defaults(func=lambda _args: parser.print_help())
    ssub = parser.add_subparsers(title="stack subcommands", metavar="COMMAND")
    _register_build(ssub)
    _register_configure(ssub)
    _register_list_apis(ssub)
    _register_list_providers(ssub)
    _register_run(ssub)


def _register_build(ssub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = ssub.add_parser(
        "build",
        prog="llama stack build",
        help="write a run config from a template or a list of providers",
        description="Write a run config (`<name>-run.yaml`) from a template or from a list of providers,\n"
        "with every provider field set to its default. The file goes to --output, or to\n"
        "$LLAMA_STACK_CONFIG_DIR/builds/ (default ~/.llama/builds/), where `llama stack run NAME` finds it.",
        epilog="examples:\n"
        "  llama stack build --template ollama --name my-stack\n"
        "  llama stack build --name my-stack --providers inference=remote::ollama,telemetry=meta-reference\n"
        "  llama stack build --list-templates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--template", metavar="NAME", help="start from this template (see --list-templates)")
    p.add_argument("--name", metavar="NAME", help="name of the stack (image_name); defaults to the template name")
    p.add_argument(
        "--providers",
        metavar="API=TYPE[,...]",
        action="append",
        help="providers to use, as API=PROVIDER_TYPE pairs separated by commas; API=TYPE@ID also picks "
        "the provider id; repeat an API for several providers",
    )
    p.add_argument("--output", metavar="PATH", help="where to write the run config")
    p.add_argument("--list-templates", action="store_true", help="show the available templates and exit")
    p.set_defaults(func=_lazy("build", "run_build"), _parser=p)


def _register_configure(ssub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = ssub.add_parser(
        "configure",
        prog="llama stack configure",
        help="set provider config fields of a run config",
        description="Update the provider settings of a run config and write it back after checking it.\n"
        "Values come from --set, from environment variables LLAMA_STACK_<API>_<PROVIDER_ID>_<FIELD>\n"
        "(upper case, other characters as `_`), or, on a terminal without --set, from prompts.",
        epilog="examples:\n"
        "  llama stack configure my-stack\n"
        "  llama stack configure run.yaml --set inference.ollama.url=http://gpu-box:11434\n"
        "  LLAMA_STACK_INFERENCE_OLLAMA_URL=http://gpu-box:11434 llama stack configure my-stack --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG", help="run config path, or the name given to `llama stack build`")
    p.add_argument(
        "--set",
        dest="assignments",
        metavar="API.PROVIDER_ID.FIELD=VALUE",
        action="append",
        default=[],
        help="set one field (nested fields as API.PROVIDER_ID.FIELD.SUBFIELD); `null` clears it",
    )
    p.add_argument("-y", "--yes", action="store_true", help="never prompt")
    p.set_defaults(func=_lazy("configure", "run_configure"), _parser=p)


def _register_list_apis(ssub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = ssub.add_parser(
        "list-apis",
        prog="llama stack list-apis",
        help="list the APIs of the stack",
        description="List the APIs a Llama Stack serves.",
    )
    p.set_defaults(func=run_list_apis)


def _register_list_providers(ssub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = ssub.add_parser(
        "list-providers",
        prog="llama stack list-providers",
        help="list the provider types of one API",
        description="List the provider types available for an API, with their config fields.",
    )
    p.add_argument("api", metavar="API", help=f"one of: {', '.join(PROVIDABLE_APIS)}")
    p.set_defaults(func=run_list_providers, _parser=p)


def _register_run(ssub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = ssub.add_parser(
        "run",
        prog="llama stack run",
        help="start the server",
        description="Start the Llama Stack server for a run config and serve until interrupted "
        "(Ctrl-C or SIGTERM).",
    )
    p.add_argument(
        "config",
        metavar="CONFIG",
        nargs="?",
        help="run config path, or the name given to `llama stack build`; without it the built-in "
        "default config is used (Ollama at localhost:11434)",
    )
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    p.add_argument("--host", default=None, help="address to listen on (default: all interfaces)")
    p.add_argument("--disable-ipv6", action="store_true", help="listen on IPv4 only")
    p.set_defaults(func=run_run)


def _lazy(module: str, func: str):  # type: ignore[no-untyped-def]
    """A command function that imports its module only when the command runs."""

    def call(args: argparse.Namespace) -> int:
        import importlib

        mod = importlib.import_module(f"llama_stack.cli.{module}")
        return int(getattr(mod, func)(args) or 0)

    return call


def run_list_apis(_args: argparse.Namespace) -> int:
    from llama_stack.cli.table import print_table

    print_table([[api] for api in ALL_APIS], ["API"], separate_rows=True)
    return 0


def run_list_providers(args: argparse.Namespace) -> int:
    api = args.api
    if api in ROUTED_BY or api == "inspect":
        source = f"from the `{ROUTED_BY[api]}` providers" if api in ROUTED_BY else "from the other APIs"
        args._parser.error(
            f"the `{api}` API has no providers of its own: the stack builds it {source}; "
            f"choose one of: {', '.join(PROVIDABLE_APIS)}"
        )
    if api not in PROVIDABLE_APIS:
        args._parser.error(f"unknown API `{api}`; choose one of: {', '.join(PROVIDABLE_APIS)}")

    from llama_stack.cli.providers import Catalogue, show_value
    from llama_stack.cli.table import print_table

    rows = []
    for entry in Catalogue.load().for_api(api):
        fields = []
        for f in entry.fields:
            if f.required and f.default is None:
                fields.append(f"{f.name} (required)")
            else:
                fields.append(f"{f.name}={show_value(f.default)}")
        rows.append(
            [
                entry.provider_type,
                "yes" if entry.available else "no",
                "\n".join(fields),
                ", ".join(entry.deps),
                entry.note,
            ]
        )
    headers = ["Provider Type", "Available", "Config Fields (defaults)", "Needs APIs", "Notes"]
    # Leave out the optional columns no provider of this API fills, to keep the table narrow.
    keep = [i for i in range(len(headers)) if i < 3 or any(row[i] for row in rows)]
    print_table(
        [[row[i] for i in keep] for row in rows], [headers[i] for i in keep], separate_rows=True, max_width=40
    )
    return 0


def run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llama_stack.cli.common import core_function, read_text, resolve_run_config, template_path

    if args.config:
        path: Path = resolve_run_config(args.config)
        source = str(path)
    else:
        path = template_path("default")
        source = BUILT_IN_DEFAULT
    if not 0 < args.port < 65536:
        raise CliError(f"--port must be between 1 and 65535, got {args.port}", code=2)
    text = read_text(path)
    serve = core_function("serve")
    print(f"Using run config `{source}`", file=sys.stderr, flush=True)
    try:
        serve(
            config_yaml=text,
            host=args.host,
            port=args.port,
            disable_ipv6=args.disable_ipv6,
            source=source,
        )
    except KeyboardInterrupt:
        # Ctrl-C is the normal way to stop the server.
        return 0
    except ValueError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"cannot start the server: {e}") from None
    return 0

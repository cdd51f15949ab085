"""``llama stack build``: writes a run config from a template or from `--providers`, with every
provider's config filled with its defaults. Nothing is installed: the server is the same binary
for every stack, so a build is just the run config."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from llama_stack.cli.common import (
    PROVIDABLE_APIS,
    CliError,
    builds_dir,
    core_function,
    dump_yaml,
    load_yaml_mapping,
    read_text,
    runtime_dir,
    template_names,
    template_path,
    write_text,
)
from llama_stack.cli.providers import Catalogue, short_provider_id, unique_id

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def run_build(args: argparse.Namespace) -> int:
    if args.list_templates:
        return _list_templates()
    if args.template and args.providers:
        args._parser.error("give either --template or --providers, not both")
    if not args.template and not args.providers:
        args._parser.error("give --template NAME (see --list-templates) or --name NAME --providers API=TYPE,...")

    if args.template:
        base = _load_template(args.template)
        name = args.name or str(base.get("image_name") or args.template)
    else:
        if not args.name:
            args._parser.error("--providers needs --name NAME")
        name = args.name
        base = _from_providers(args.providers)
    if not _NAME.fullmatch(name):
        raise CliError(
            f"--name `{name}` is not usable as a stack name: use letters, digits, `.`, `_` and `-`", code=2
        )

    catalogue = Catalogue.load()
    config, missing = assemble(name, base, catalogue)
    for api, entries in config["providers"].items():
        for entry in entries:
            spec = catalogue.require(api, entry["provider_type"], f"providers.{api}")
            if not spec.available:
                print(
                    f"note: `{api}` provider `{entry['provider_id']}` ({spec.provider_type}) cannot run in this "
                    f"build: {spec.note or 'not available'}",
                    file=sys.stderr,
                )
    text = dump_yaml(config)
    path = Path(args.output).expanduser() if args.output else builds_dir() / f"{name}-run.yaml"
    if not missing:
        try:
            core_function("check_run_config")(text, str(path))
        except ValueError as e:
            raise CliError(f"the run config built for `{name}` is not valid: {e}") from None

    write_text(path, text)
    print(f"Wrote run config `{path}`")
    target = str(path) if args.output else name
    if missing:
        print("These required fields have no default yet:", file=sys.stderr)
        for item in missing:
            print(f"  {item}", file=sys.stderr)
        print(f"Set them with `llama stack configure {target}`, then start with `llama stack run {target}`.")
    else:
        print(f"Start it with `llama stack run {target}`; change settings with `llama stack configure {target}`.")
    return 0


def _list_templates() -> int:
    from llama_stack.cli.table import print_table

    rows = []
    for name in template_names():
        path = template_path(name)
        text = read_text(path, "template")
        data = load_yaml_mapping(text, str(path))
        providers = data.get("providers") or {}
        summary = "\n".join(
            f"{api}: {', '.join(str(p.get('provider_type')) for p in entries or [])}"
            for api, entries in providers.items()
        )
        rows.append([name, summary, _description(text)])
    print_table(rows, ["Template Name", "Providers", "Description"], separate_rows=True, max_width=50)
    return 0


def _description(text: str) -> str:
    """A template describes itself in the comment lines at its top."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def _load_template(name: str) -> dict[str, Any]:
    path = template_path(name)
    if not path.is_file():
        known = ", ".join(template_names()) or "none"
        raise CliError(f"unknown template `{name}`; available templates: {known}", code=2)
    return load_yaml_mapping(read_text(path, "template"), str(path))


def _from_providers(specs: list[str]) -> dict[str, Any]:
    """Reads `api=type[@id]` items (comma separated, option repeatable) into a providers map."""
    providers: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            api, sep, ptype = (s.strip() for s in item.partition("="))
            if not sep or not api or not ptype:
                raise CliError(f"--providers: `{item}` is not of the form API=PROVIDER_TYPE", code=2)
            if api not in PROVIDABLE_APIS:
                raise CliError(
                    f"--providers: `{api}` is not an API that takes providers; choose from: "
                    f"{', '.join(PROVIDABLE_APIS)}",
                    code=2,
                )
            ptype, at, pid = ptype.partition("@")
            entry: dict[str, Any] = {"provider_type": ptype.strip()}
            if at:
                if not pid.strip():
                    raise CliError(f"--providers: `{item}` has an empty provider id after `@`", code=2)
                entry["provider_id"] = pid.strip()
            providers.setdefault(api, []).append(entry)
    if not providers:
        raise CliError("--providers: no providers given", code=2)
    return {"apis": list(providers), "providers": providers}


def assemble(name: str, base: dict[str, Any], catalogue: Catalogue) -> tuple[dict[str, Any], list[str]]:
    """The run config for `base` (a template or --providers), and the required fields that are
    still unset (as `api.provider_id.field`)."""
    raw_providers = base.get("providers")
    if not isinstance(raw_providers, dict) or not raw_providers:
        raise CliError("`providers` must map API names to lists of providers")
    providers: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for api, entries in raw_providers.items():
        if not isinstance(entries, list):
            raise CliError(f"`providers.{api}` must be a list of providers")
        taken: set[str] = {str(e["provider_id"]) for e in entries if isinstance(e, dict) and e.get("provider_id")}
        out: list[dict[str, Any]] = []
        used: set[str] = set()
        for i, entry in enumerate(entries):
            where = f"providers.{api}[{i}]"
            if not isinstance(entry, dict) or not entry.get("provider_type"):
                raise CliError(f"`{where}` needs a `provider_type`")
            ptype = str(entry["provider_type"])
            spec = catalogue.require(api, ptype, where)
            pid = entry.get("provider_id")
            if not pid:
                pid = unique_id(short_provider_id(ptype), taken)
                taken.add(pid)
            if str(pid) in used:
                raise CliError(f"`{where}`: duplicate provider_id `{pid}` for API `{api}`", code=2)
            used.add(str(pid))
            given = entry.get("config") or {}
            if not isinstance(given, dict):
                raise CliError(f"`{where}.config` must be a mapping")
            values = fill_defaults(spec.default_config(), given)
            missing += [f"{api}.{pid}.{f}" for f in spec.missing_required(values)]
            out.append({"provider_id": str(pid), "provider_type": ptype, "config": values})
        providers[api] = out

    config: dict[str, Any] = {
        "version": "2",
        "built_at": datetime.now().isoformat(timespec="seconds"),
        "image_name": name,
        "docker_image": None,
        "conda_env": None,
        "apis": list(base.get("apis") or providers),
        "providers": providers,
    }
    for key in ("models", "shields", "memory_banks"):
        if base.get(key):
            config[key] = base[key]
    config["metadata_store"] = base.get("metadata_store") or {
        "type": "sqlite",
        "namespace": None,
        "db_path": str(runtime_dir() / f"{name}-registry.db"),
    }
    return config, missing


def fill_defaults(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults in the catalogue's field order, overridden by what was given; extra keys kept."""
    merged = {k: given.get(k, v) for k, v in defaults.items()}
    merged.update({k: v for k, v in given.items() if k not in merged})
    return merged

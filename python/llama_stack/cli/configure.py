"""``llama stack configure``: change provider settings in a run config, check it with the core,
and write it back. Values come from environment variables, `--set`, or prompts on a terminal."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Optional

from llama_stack.cli.build import fill_defaults
from llama_stack.cli.common import (
    CliError,
    core_function,
    dump_yaml,
    load_yaml_mapping,
    read_text,
    resolve_run_config,
    write_text,
)
from llama_stack.cli.providers import Catalogue, ConfigField, ProviderType, parse_value, show_value

ENV_PREFIX = "LLAMA_STACK_"


class _Slot:
    """One configured provider: where it sits in the file and what the catalogue knows of it."""

    def __init__(self, api: str, entry: dict[str, Any], spec: ProviderType) -> None:
        self.api = api
        self.entry = entry
        self.spec = spec

    @property
    def provider_id(self) -> str:
        return str(self.entry["provider_id"])

    @property
    def config(self) -> dict[str, Any]:
        return self.entry["config"]  # type: ignore[no-any-return]

    def field_names(self) -> list[str]:
        names = [f.name for f in self.spec.fields]
        return names + [k for k in self.config if k not in names]


def run_configure(args: argparse.Namespace) -> int:
    path = resolve_run_config(args.config)
    data = load_yaml_mapping(read_text(path), str(path))
    slots = _slots(data, Catalogue.load())

    changed = _apply_env(slots)
    for assignment in args.assignments:
        changed.append(_apply_set(slots, assignment))
    if not args.yes and not args.assignments and sys.stdin.isatty():
        _prompt_all(slots)

    text = dump_yaml(data)
    try:
        core_function("check_run_config")(text, str(path))
    except ValueError as e:
        raise CliError(f"{e} (`{path}` was left unchanged)") from None
    write_text(path, text)
    for item in changed:
        print(f"  set {item}")
    print(f"Wrote run config `{path}`")
    print(f"Start it with `llama stack run {args.config}`.")
    return 0


def _slots(data: dict[str, Any], catalogue: Catalogue) -> list[_Slot]:
    providers = data.get("providers")
    if not isinstance(providers, dict):
        raise CliError("run config: `providers` must map API names to lists of providers")
    slots = []
    for api, entries in providers.items():
        if not isinstance(entries, list):
            raise CliError(f"run config: `providers.{api}` must be a list of providers")
        for i, entry in enumerate(entries):
            where = f"run config: `providers.{api}[{i}]`"
            if not isinstance(entry, dict) or not entry.get("provider_id") or not entry.get("provider_type"):
                raise CliError(f"{where} needs `provider_id` and `provider_type`")
            spec = catalogue.require(api, str(entry["provider_type"]), where)
            config = entry.get("config") or {}
            if not isinstance(config, dict):
                raise CliError(f"{where}.config must be a mapping")
            entry["config"] = fill_defaults(spec.default_config(), config)
            slots.append(_Slot(api, entry, spec))
    return slots


def env_name(api: str, provider_id: str, field: str) -> str:
    def norm(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9]", "_", s).upper()

    return f"{ENV_PREFIX}{norm(api)}_{norm(provider_id)}_{norm(field)}"


def _apply_env(slots: list[_Slot]) -> list[str]:
    changed = []
    known: set[str] = set()
    for slot in slots:
        for name in slot.field_names():
            var = env_name(slot.api, slot.provider_id, name)
            known.add(var)
            if var in os.environ:
                where = f"environment variable {var}"
                slot.config[name] = parse_value(os.environ[var], slot.spec.field(name), where)
                changed.append(f"{slot.api}.{slot.provider_id}.{name} (from {var})")
    # A misspelt field name would otherwise be ignored without a word.
    for slot in slots:
        prefix = env_name(slot.api, slot.provider_id, "")
        for var in sorted(os.environ):
            if var.startswith(prefix) and var not in known:
                print(
                    f"warning: {var} matches no config field of provider `{slot.provider_id}` "
                    f"({slot.api}); its fields: {', '.join(slot.field_names()) or 'none'}",
                    file=sys.stderr,
                )
    return changed


def _apply_set(slots: list[_Slot], assignment: str) -> str:
    key, sep, raw = assignment.partition("=")
    where = f"--set {assignment}"
    if not sep:
        raise CliError(f"{where}: expected API.PROVIDER_ID.FIELD=VALUE", code=2)
    api, _, rest = key.strip().partition(".")
    in_api = [s for s in slots if s.api == api]
    if not in_api:
        apis = ", ".join(dict.fromkeys(s.api for s in slots)) or "none"
        raise CliError(f"{where}: the run config has no providers for API `{api}`; it has: {apis}", code=2)
    # Provider ids may contain dots, so take the longest id the key starts with.
    matches = [s for s in in_api if rest.startswith(s.provider_id + ".")]
    if not matches:
        ids = ", ".join(s.provider_id for s in in_api)
        raise CliError(f"{where}: no `{api}` provider matches `{rest}`; provider ids: {ids}", code=2)
    slot = max(matches, key=lambda s: len(s.provider_id))
    parts = rest[len(slot.provider_id) + 1 :].split(".")
    if not all(parts):
        raise CliError(f"{where}: empty field name", code=2)
    top = parts[0]
    if slot.spec.fields and top not in slot.field_names():
        raise CliError(
            f"{where}: provider `{slot.provider_id}` ({slot.spec.provider_type}) has no field `{top}`; "
            f"its fields: {', '.join(slot.field_names())}",
            code=2,
        )
    spec = slot.spec.field(top) if len(parts) == 1 else None
    value = parse_value(raw, spec, where)
    target = slot.config
    for i, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            nxt = target[part] = {}
        if not isinstance(nxt, dict):
            path = ".".join(parts[: i + 1])
            raise CliError(f"{where}: `{path}` holds {show_value(nxt)}, not a mapping", code=2)
        target = nxt
    target[parts[-1]] = value
    return f"{api}.{slot.provider_id}.{'.'.join(parts)} = {show_value(value)}"


def _prompt_all(slots: list[_Slot]) -> None:
    print("Press Enter to keep the value in brackets; type `null` to clear a field.")
    try:
        for slot in slots:
            print(f"\n{slot.api}: provider `{slot.provider_id}` ({slot.spec.provider_type})")
            if not slot.field_names():
                print("  (no settings)")
            for name in slot.field_names():
                _prompt_field(slot, name, slot.spec.field(name))
    except EOFError:
        # End of input keeps every remaining value as it is.
        print()


def _prompt_field(slot: _Slot, name: str, spec: Optional[ConfigField]) -> None:
    if spec is not None and spec.description:
        print(f"  # {spec.description}")
    kind = spec.type if spec is not None and spec.type else "value"
    if spec is not None and spec.required:
        kind += ", required"
    current = slot.config.get(name)
    while True:
        answer = input(f"  {name} ({kind}) [{show_value(current)}]: ")
        if not answer.strip():
            if current is None and spec is not None and spec.required:
                print("  a value is required here")
                continue
            return
        try:
            value = parse_value(answer, spec, "")
        except CliError as e:
            print(f"  {e}")
            continue
        if value is None and spec is not None and spec.required:
            print("  a value is required here")
            continue
        slot.config[name] = value
        return

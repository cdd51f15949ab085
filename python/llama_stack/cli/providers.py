"""The provider catalogue as the CLI sees it: which provider types each API has, their config
fields and defaults, and how a value typed on the command line becomes a config value."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from llama_stack.cli.common import CliError, core_function


@dataclass
class ConfigField:
    name: str
    type: str
    required: bool
    default: Any
    description: str

    @property
    def is_text(self) -> bool:
        """True for fields whose values are plain strings: typed input is kept verbatim."""
        words = set(re.findall(r"[a-z]+", self.type.lower())) - {"optional", "none", "null", "nullable"}
        return bool(words) and words <= {"str", "string", "secretstr", "url", "path"}


@dataclass
class ProviderType:
    api: str
    provider_type: str
    available: bool
    note: str
    deps: list[str]
    fields: list[ConfigField] = field(default_factory=list)

    def field(self, name: str) -> Optional[ConfigField]:
        return next((f for f in self.fields if f.name == name), None)

    def default_config(self) -> dict[str, Any]:
        """Every field with its default; fields without one (required or not) are null, so the
        written file shows everything that can be set."""
        return {f.name: f.default for f in self.fields}

    def missing_required(self, config: dict[str, Any]) -> list[str]:
        return [f.name for f in self.fields if f.required and config.get(f.name) is None]


class Catalogue:
    """All provider types the compiled core offers, indexed by API."""

    def __init__(self, entries: list[ProviderType]) -> None:
        self.entries = entries

    @classmethod
    def load(cls) -> "Catalogue":
        raw = core_function("provider_types")()
        try:
            items = json.loads(raw)
        except (TypeError, ValueError) as e:
            raise CliError(f"the core returned an unreadable provider list: {e}") from None
        entries = []
        for item in items:
            fields = [
                ConfigField(
                    name=f["name"],
                    type=str(f.get("type") or ""),
                    required=bool(f.get("required")),
                    default=f.get("default"),
                    description=str(f.get("description") or ""),
                )
                for f in item.get("config_fields") or []
            ]
            entries.append(
                ProviderType(
                    api=item["api"],
                    provider_type=item["provider_type"],
                    available=bool(item.get("available", True)),
                    note=str(item.get("note") or ""),
                    deps=list(item.get("deps") or []),
                    fields=fields,
                )
            )
        return cls(entries)

    def for_api(self, api: str) -> list[ProviderType]:
        return [e for e in self.entries if e.api == api]

    def find(self, api: str, provider_type: str) -> Optional[ProviderType]:
        return next((e for e in self.entries if e.api == api and e.provider_type == provider_type), None)

    def require(self, api: str, provider_type: str, where: str) -> ProviderType:
        found = self.find(api, provider_type)
        if found is None:
            known = ", ".join(e.provider_type for e in self.for_api(api)) or "none"
            raise CliError(
                f"{where}: provider type `{provider_type}` is not available for API `{api}`; known types: {known}",
                code=2,
            )
        return found


def short_provider_id(provider_type: str) -> str:
    """A readable provider id for a provider type: `remote::ollama` → `ollama`,
    `remote::hf::endpoint` → `hf-endpoint`, `meta-reference` stays."""
    name = provider_type[len("remote::") :] if provider_type.startswith("remote::") else provider_type
    return name.replace("::", "-") or provider_type


def unique_id(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 1
    while f"{base}-{n:02d}" in taken:
        n += 1
    return f"{base}-{n:02d}"


def parse_value(text: str, spec: Optional[ConfigField], where: str) -> Any:
    """Turns typed text into a config value. `null` clears a field; text fields keep the text as
    typed; anything else is read as YAML, so `8080`, `true`, `[a, b]` and `{type: sqlite}` work."""
    stripped = text.strip()
    if stripped in ("null", "~"):
        return None
    if spec is not None and spec.is_text:
        return text
    import yaml

    try:
        value = yaml.safe_load(stripped) if stripped else ""
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e)
        prefix = f"{where}: " if where else ""
        raise CliError(f"{prefix}cannot read `{text}` as a value: {problem}", code=2) from None
    if spec is not None:
        expected = _KINDS.get(spec.type.lower())
        if expected is not None and not expected[1](value):
            prefix = f"{where}: " if where else ""
            raise CliError(f"{prefix}`{spec.name}` must be {expected[0]}, got `{text}`", code=2)
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# The kinds the core reports for config fields: what each accepts, and how to say so.
_KINDS: dict[str, tuple[str, Any]] = {
    "integer": ("an integer", _is_int),
    "number": ("a number", lambda v: _is_int(v) or isinstance(v, float)),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "object": ("a mapping, e.g. {key: value}", lambda v: isinstance(v, dict)),
    "list": ("a list, e.g. [a, b]", lambda v: isinstance(v, list)),
}


def show_value(value: Any) -> str:
    """The inverse of parse_value for display: compact YAML-compatible text."""
    if value is None:
        return "null"
    if isinstance(value, str):
        # An empty string would be invisible; quote it as YAML would.
        return value if value else '""'
    return json.dumps(value)

"""Reading run configs written for any release, upgraded to the current format (version "2")."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Dict, List

from llama_stack.distribution.datatypes import LLAMA_STACK_RUN_CONFIG_VERSION, StackRunConfig

__all__ = ["parse_and_maybe_upgrade_config", "upgrade_from_routing_table"]

# Sections of the format before version "2": providers per API came from these.
_OLD_SECTIONS = ("routing_table", "api_providers", "provider_map")


def _entries(api: str, entries: Any, section: str) -> List[Dict[str, Any]]:
    if not isinstance(entries, list):
        raise ValueError(f"`{section}.{api}` must be a list of providers, got {type(entries).__name__}")
    providers = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("provider_type"):
            raise ValueError(f"`{section}.{api}[{i}]` must be a mapping with a `provider_type`")
        # One provider keeps its type as id; several are told apart by their position.
        pid = f"{entry['provider_type']}-{i:02d}" if len(entries) > 1 else entry["provider_type"]
        providers.append(
            {"provider_id": pid, "provider_type": entry["provider_type"], "config": entry.get("config") or {}}
        )
    return providers


def upgrade_from_routing_table(config_dict: Dict[str, Any]) -> Dict[str, Any]:
    """Turns a config with ``routing_table`` / ``api_providers`` / ``apis_to_serve`` into one with
    ``providers`` and ``apis`` (a new dict; the argument is left as it was)."""
    config = copy.deepcopy(config_dict)
    providers: Dict[str, List[Dict[str, Any]]] = {}

    routing_table = config.pop("routing_table", None) or {}
    if not isinstance(routing_table, dict):
        raise ValueError("`routing_table` must be a mapping from API name to a list of providers")
    for api, entries in routing_table.items():
        providers[api] = _entries(api, entries, "routing_table")

    provider_map = config.pop("api_providers", None)
    legacy_map = config.pop("provider_map", None)
    provider_map = provider_map or legacy_map or {}
    if not isinstance(provider_map, dict):
        raise ValueError("`api_providers` must be a mapping from API name to a provider")
    for api, provider in provider_map.items():
        # Routed APIs listed here only named their routing-table providers; those came above.
        if isinstance(provider, dict) and "provider_type" in provider:
            providers[api] = [
                {
                    "provider_id": provider["provider_type"],
                    "provider_type": provider["provider_type"],
                    "config": provider.get("config") or {},
                }
            ]

    config["providers"] = providers
    config["apis"] = config.pop("apis_to_serve", None) or config.get("apis") or []
    return config


def _check_not_empty(config: Dict[str, Any]) -> None:
    """An upgraded config must have come out with providers: empty old sections mean none."""
    providers = config.get("providers")
    where = "in `routing_table` or `api_providers`"
    if not providers:
        raise ValueError(
            f"the run config names no provider {where}; give each API a list under `providers`, e.g. "
            "providers: {inference: [{provider_id: ollama, provider_type: remote::ollama, config: {}}]}"
        )
    if isinstance(providers, dict):
        for api, entries in providers.items():
            if not entries:
                raise ValueError(f"`{api}` has no provider {where}; give it at least one or leave the API out")


def parse_and_maybe_upgrade_config(config_dict: Dict[str, Any]) -> StackRunConfig:
    """The ``StackRunConfig`` of a run config read from YAML/JSON, upgrading older formats.

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) when the config is not a
    mapping or has bad fields, and when an older-format config names no provider for an API
    (empty ``routing_table`` / ``api_providers`` sections).
    """
    if not isinstance(config_dict, dict):
        raise ValueError(f"a run config must be a mapping, got {type(config_dict).__name__}")
    version = config_dict.get("version")
    upgraded = any(k in config_dict for k in _OLD_SECTIONS)
    if str(version) == LLAMA_STACK_RUN_CONFIG_VERSION and not upgraded:
        return StackRunConfig(**config_dict)

    config = dict(config_dict)
    if upgraded:
        config = upgrade_from_routing_table(config_dict)
        _check_not_empty(config)
    config["version"] = LLAMA_STACK_RUN_CONFIG_VERSION
    config["built_at"] = datetime.now().isoformat()
    return StackRunConfig(**config)

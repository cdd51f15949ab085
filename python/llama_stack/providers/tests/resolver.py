"""``resolve_impls_for_test(api, deps)``: the implementations of one API (and the APIs it needs)
from the provider config file named by ``$PROVIDER_CONFIG``, as 0.0.41's provider test suites
build them.

The file holds ``providers`` (a mapping API -> list of providers, or just the list for ``api``)
and optionally ``provider_data`` (provider id -> the provider-data header's fields). The provider
of ``api`` is the one whose id is ``$PROVIDER_ID``, else the first; every provider of each
dependency is used.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any, Dict, List, Optional

import yaml

from llama_stack.distribution.configure import parse_and_maybe_upgrade_config
from llama_stack.distribution.datatypes import Api, Provider
from llama_stack.distribution.request_headers import set_request_provider_data
from llama_stack.distribution.resolver import resolve_impls_with_routing

__all__ = ["choose_providers", "pick_provider", "read_providers", "resolve_impls_for_test"]


async def resolve_impls_for_test(api: Api, deps: Optional[List[Api]] = None) -> Dict[Api, Any]:
    path = os.environ.get("PROVIDER_CONFIG")
    if not path:
        raise ValueError("set PROVIDER_CONFIG to a YAML file with the providers to test")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}

    chosen = choose_providers(read_providers(api, config), api, deps)
    run_config = parse_and_maybe_upgrade_config(
        {
            "built_at": datetime.now(),
            "image_name": "test-fixture",
            "apis": [api.value] + [d.value for d in deps or []],
            "providers": {k: [p.model_dump() for p in v] for k, v in chosen.items()},
        }
    )
    impls = await resolve_impls_with_routing(run_config)

    provider_data = (config.get("provider_data") or {}).get(chosen[api.value][0].provider_id)
    if provider_data:
        set_request_provider_data({"X-LlamaStack-ProviderData": json.dumps(provider_data)})
    return impls


def read_providers(api: Api, config: Dict[str, Any]) -> Dict[str, Any]:
    providers = config.get("providers")
    if providers is None:
        raise ValueError("the provider config file needs a `providers` key")
    if isinstance(providers, dict):
        return providers
    if isinstance(providers, list):
        return {api.value: providers}
    raise ValueError("`providers` must be a list of providers, or a mapping from API to such lists")


def choose_providers(providers: Dict[str, Any], api: Api, deps: Optional[List[Api]] = None) -> Dict[str, List[Provider]]:
    if api.value not in providers:
        raise ValueError(f"no providers for `{api.value}` in the provider config file")
    chosen = {api.value: [pick_provider(api, providers[api.value], "PROVIDER_ID")]}
    for dep in deps or []:
        if dep.value not in providers:
            raise ValueError(f"no providers for `{dep.value}` (needed by `{api.value}`) in the provider config file")
        chosen[dep.value] = [Provider(**p) for p in providers[dep.value]]
    return chosen


def pick_provider(api: Api, providers: List[Any], key: str) -> Provider:
    by_id = {p["provider_id"]: p for p in providers}
    if not by_id:
        raise ValueError(f"no providers for `{api.value}` in the provider config file")
    wanted = os.environ.get(key)
    if wanted:
        if wanted not in by_id:
            raise ValueError(f"provider `{wanted}` ({key}) is not in the provider config file; ids: {', '.join(by_id)}")
        return Provider(**by_id[wanted])
    first = next(iter(by_id.values()))
    print(f"No provider ID specified, picking first `{first['provider_id']}`")
    return Provider(**first)

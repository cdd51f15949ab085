"""The implementations of a run config's APIs, built in this process.

``resolve_impls_with_routing(run_config)`` builds the stack once and returns one implementation
per served API, keyed by ``Api``. Each has the API's methods with upstream's names and
parameters: a call returns an awaitable, or with ``stream=True`` an async iterator of chunks::

    impls = await resolve_impls_with_routing(parse_and_maybe_upgrade_config(yaml.safe_load(f)))
    inference = impls[Api.inference]
    response = await inference.chat_completion(model=..., messages=[...])
    async for chunk in inference.chat_completion(model=..., messages=[...], stream=True):
        ...

Routed APIs (inference, safety, memory) come with the routing tables over their objects
(models, shields, memory banks), and ``inspect`` is always there. All of them share one stack
(``LlamaStack``), so they see the same registrations and the same providers.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, List, Optional

from llama_stack.distribution.datatypes import (
    AutoRoutedProviderSpec,
    Provider,
    RoutingTableProviderSpec,
    StackRunConfig,
)
from llama_stack.distribution.distribution import builtin_automatically_routed_apis
from llama_stack.distribution.stack import APIS, LlamaStack, _ApiClient
from llama_stack.providers.datatypes import Api, InlineProviderSpec, ProviderSpec

__all__ = ["api_protocol_map", "check_protocol_compliance", "resolve_impls_with_routing", "ROUTED_APIS"]

# Routed API -> the API of the routing table over its objects.
ROUTED_APIS: Dict[Api, Api] = {info.router_api: info.routing_table_api for info in builtin_automatically_routed_apis()}

_ROUTER_MODULE = "llama_stack.distribution.routers"


def api_protocol_map() -> Dict[Api, Any]:
    """The protocol class of every API this stack can serve in process."""
    out = {}
    for api in Api:
        if api.value in APIS:
            module, name = APIS[api.value]
            out[api] = getattr(importlib.import_module(module), name)
    return out


class _Impl(_ApiClient):
    """One API's implementation: its protocol's methods, run by the shared stack."""

    def __init__(self, stack: LlamaStack, api: Api, spec: ProviderSpec, provider_id: str, config: Any) -> None:
        module_name, class_name = APIS[api.value]
        protocol = getattr(importlib.import_module(module_name), class_name)
        super().__init__(stack, protocol, vars(importlib.import_module(protocol.__module__)))
        self.__provider_id__ = provider_id
        self.__provider_spec__ = spec
        self.__provider_config__ = config

    async def initialize(self) -> None:
        await self._stack._ensure()

    async def shutdown(self) -> None:
        """Stops the stack behind every implementation (they share it)."""
        await self._stack.close()


def _served_apis(config: StackRunConfig) -> List[Api]:
    names = list(config.apis) if config.apis else list(config.providers)
    apis: List[Api] = []
    for name in names:
        try:
            api = Api(name)
        except ValueError:
            raise ValueError(
                f"unknown API `{name}` in the run config; APIs: {', '.join(a.value for a in Api)}"
            ) from None
        if api.value not in APIS:
            continue
        apis.append(api)
        table = ROUTED_APIS.get(api)
        if table is not None:
            apis.append(table)
    apis.append(Api.inspect)
    return list(dict.fromkeys(apis))


def _single_provider(config: StackRunConfig, api: Api) -> Optional[Provider]:
    providers = config.providers.get(api.value) or []
    return providers[0] if providers else None


def _spec_for(config: StackRunConfig, api: Api) -> tuple:
    """(spec, provider id, provider config) describing how ``api`` is served."""
    if api in ROUTED_APIS:
        spec: ProviderSpec = AutoRoutedProviderSpec(
            api=api, module=_ROUTER_MODULE, routing_table_api=ROUTED_APIS[api], api_dependencies=[ROUTED_APIS[api]]
        )
        return spec, "__autorouted__", None
    for router, table in ROUTED_APIS.items():
        if table == api:
            spec = RoutingTableProviderSpec(api=api, module=_ROUTER_MODULE, router_api=router)
            return spec, "__routing_table__", None
    if api == Api.inspect:
        spec = InlineProviderSpec(
            api=api, provider_type="__builtin__", config_class="", module="llama_stack.distribution.inspect"
        )
        return spec, "__builtin__", {"run_config": config.model_dump(mode="json")}
    provider = _single_provider(config, api)
    if provider is None:
        spec = InlineProviderSpec(api=api, provider_type="__builtin__", config_class="", module="")
        return spec, "__builtin__", None
    spec = InlineProviderSpec(api=api, provider_type=provider.provider_type, config_class="", module="")
    return spec, provider.provider_id, provider.config


async def resolve_impls_with_routing(run_config: Any) -> Dict[Api, Any]:
    """Builds the stack of ``run_config`` (a ``StackRunConfig``, a dict, a path or YAML text)
    and returns its API implementations keyed by ``Api``."""
    if isinstance(run_config, dict):
        from llama_stack.distribution.configure import parse_and_maybe_upgrade_config

        run_config = parse_and_maybe_upgrade_config(run_config)
    stack = await LlamaStack.create(run_config)
    if not isinstance(run_config, StackRunConfig):
        import json

        from llama_stack import _core

        checked = json.loads(_core.check_run_config(stack._config_text, stack._source))
        run_config = StackRunConfig(**checked)
    impls: Dict[Api, Any] = {}
    for api in _served_apis(run_config):
        spec, provider_id, config = _spec_for(run_config, api)
        impls[api] = _Impl(stack, api, spec, provider_id, config)
    return impls


def check_protocol_compliance(obj: Any, protocol: Any) -> None:
    """Raises ``ValueError`` naming every method of ``protocol`` that ``obj`` lacks or cannot
    be called with the protocol's parameters."""
    problems = []
    for name, value in inspect.getmembers(protocol, predicate=inspect.isfunction):
        if not hasattr(value, "__webmethod__"):
            continue
        method = getattr(obj, name, None)
        if method is None:
            problems.append((name, "missing"))
        elif not callable(method):
            problems.append((name, "not_callable"))
        else:
            try:
                params = set(inspect.signature(method).parameters)
            except (TypeError, ValueError):
                continue
            wanted = set(inspect.signature(value).parameters) - {"self"}
            has_var_kw = any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(method).parameters.values()
            )
            if not has_var_kw and not wanted <= params:
                problems.append((name, "signature_mismatch"))
    if problems:
        who = getattr(obj, "__provider_id__", type(obj).__name__)
        raise ValueError(f"`{who}` does not implement {protocol.__name__}: {problems}")

"""Which APIs a stack has, and which of them the stack routes itself."""

from __future__ import annotations

from typing import List

from pydantic import BaseModel

from llama_stack.providers.datatypes import Api

__all__ = ["AutoRoutedApiInfo", "builtin_automatically_routed_apis", "providable_apis", "stack_apis"]


class AutoRoutedApiInfo(BaseModel):
    """A routed API and the API of the routing table over its objects."""

    routing_table_api: Api
    router_api: Api


def stack_apis() -> List[Api]:
    return list(Api)


def builtin_automatically_routed_apis() -> List[AutoRoutedApiInfo]:
    return [
        AutoRoutedApiInfo(routing_table_api=Api.models, router_api=Api.inference),
        AutoRoutedApiInfo(routing_table_api=Api.shields, router_api=Api.safety),
        AutoRoutedApiInfo(routing_table_api=Api.memory_banks, router_api=Api.memory),
    ]


def providable_apis() -> List[Api]:
    """APIs a run config gives providers for: all but the routing tables and inspect."""
    tables = {info.routing_table_api for info in builtin_automatically_routed_apis()}
    return [api for api in Api if api not in tables and api != Api.inspect]

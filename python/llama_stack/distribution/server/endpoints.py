"""The HTTP endpoints of every API, read off the protocols' ``@webmethod`` routes."""

from __future__ import annotations

import inspect
from typing import Dict, List

from pydantic import BaseModel

from llama_stack.providers.datatypes import Api

__all__ = ["ApiEndpoint", "get_all_api_endpoints"]


class ApiEndpoint(BaseModel):
    route: str
    # Lower-case HTTP method: get, post or delete.
    method: str
    # The protocol method serving it.
    name: str


def get_all_api_endpoints() -> Dict[Api, List[ApiEndpoint]]:
    from llama_stack.distribution.resolver import api_protocol_map

    out: Dict[Api, List[ApiEndpoint]] = {}
    for api, protocol in api_protocol_map().items():
        endpoints = []
        for name, func in inspect.getmembers(protocol, predicate=inspect.isfunction):
            meta = getattr(func, "__webmethod__", None)
            if meta is None:
                continue
            method = (meta.method or "POST").lower()
            endpoints.append(ApiEndpoint(route=meta.route, method=method if method in ("get", "delete") else "post", name=name))
        out[api] = endpoints
    return out

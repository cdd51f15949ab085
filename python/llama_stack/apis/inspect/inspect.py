"""Inspect API: what the running stack serves and whether it is healthy."""

from typing import Dict, List, Protocol, runtime_checkable

from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel


@json_schema_type
class ProviderInfo(BaseModel):
    provider_id: str
    provider_type: str


@json_schema_type
class RouteInfo(BaseModel):
    route: str
    method: str
    provider_types: List[str]


@json_schema_type
class HealthInfo(BaseModel):
    status: str


@runtime_checkable
class Inspect(Protocol):
    @webmethod(route="/providers/list", method="GET")
    # Each API has a list of provider instances; the 0.0.41 annotation said one per API, but
    # its server (and the client) always sent lists, so the annotation follows the wire.
    async def list_providers(self) -> Dict[str, List[ProviderInfo]]: ...

    @webmethod(route="/routes/list", method="GET")
    async def list_routes(self) -> Dict[str, List[RouteInfo]]: ...

    @webmethod(route="/health", method="GET")
    async def health(self) -> HealthInfo: ...

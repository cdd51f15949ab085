"""The ``Api`` enum and the small descriptors a provider implementation is described by.

Importing this module loads the model, shield and memory bank types (for the private registry
protocols below) but not the inference types, which are much heavier.
"""

from enum import Enum
from typing import Any, List, Optional, Protocol

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field

from llama_stack.apis.memory_banks import MemoryBankDef
from llama_stack.apis.models import ModelDef
from llama_stack.apis.shields import ShieldDef


@json_schema_type
class Api(Enum):
    """The APIs a stack can serve (and that providers implement)."""

    inference = "inference"
    safety = "safety"
    agents = "agents"
    memory = "memory"
    telemetry = "telemetry"
    models = "models"
    shields = "shields"
    memory_banks = "memory_banks"
    # Always served by the stack itself; no provider is configured for it.
    inspect = "inspect"


class ModelsProtocolPrivate(Protocol):
    """What an inference provider exposes so the stack can build its model registry."""

    async def list_models(self) -> List[ModelDef]: ...

    async def register_model(self, model: ModelDef) -> None: ...


class ShieldsProtocolPrivate(Protocol):
    """What a safety provider exposes so the stack can build its shield registry."""

    async def list_shields(self) -> List[ShieldDef]: ...

    async def register_shield(self, shield: ShieldDef) -> None: ...


class MemoryBanksProtocolPrivate(Protocol):
    """What a memory provider exposes so the stack can build its bank registry."""

    async def list_memory_banks(self) -> List[MemoryBankDef]: ...

    async def register_memory_bank(self, memory_bank: MemoryBankDef) -> None: ...


class RoutingTable(Protocol):
    def get_provider_impl(self, routing_key: str) -> Any: ...


@json_schema_type
class ProviderSpec(BaseModel):
    """Describes one provider implementation of one API."""

    api: Api
    provider_type: str
    config_class: str = Field(description="Dotted path of the provider's config class")
    api_dependencies: List[Api] = Field(
        default_factory=list,
        description="Other APIs this provider calls into",
    )
    # Filled in by the resolver while ordering providers; not part of a user-written spec.
    deps__: List[str] = Field(default_factory=list)


@json_schema_type
class AdapterSpec(BaseModel):
    """Describes the code that adapts a remote service to a stack API."""

    adapter_type: str = Field(description="Name of the adapter, unique within its API")
    module: str = Field(description="Dotted module path providing get_adapter_impl(config, deps)")
    pip_packages: List[str] = Field(default_factory=list, description="Python packages it needs")
    config_class: Optional[str] = Field(default=None, description="Dotted path of its config class")
    provider_data_validator: Optional[str] = None


@json_schema_type
class InlineProviderSpec(ProviderSpec):
    """A provider that runs inside the stack's process."""

    pip_packages: List[str] = Field(default_factory=list, description="Python packages it needs")
    docker_image: Optional[str] = Field(
        default=None,
        description="Prebuilt image to use instead of installing pip_packages",
    )
    module: str = Field(description="Dotted module path providing get_provider_impl(config, deps)")
    provider_data_validator: Optional[str] = None


class RemoteProviderConfig(BaseModel):
    """Address of a remote service speaking this stack's HTTP API."""

    host: str = "localhost"
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@json_schema_type
class RemoteProviderSpec(ProviderSpec):
    """A provider backed by a remote service, optionally through an adapter."""

    # Without an adapter the remote service is taken to speak the stack API directly.
    adapter: Optional[AdapterSpec] = None

    @property
    def docker_image(self) -> Optional[str]:
        return None

    @property
    def module(self) -> str:
        if self.adapter is not None:
            return self.adapter.module
        return f"llama_stack.apis.{self.api.value}.client"

    @property
    def pip_packages(self) -> List[str]:
        return list(self.adapter.pip_packages) if self.adapter is not None else []

    @property
    def provider_data_validator(self) -> Optional[str]:
        return self.adapter.provider_data_validator if self.adapter is not None else None


def is_passthrough(spec: ProviderSpec) -> bool:
    """True for a remote provider that forwards calls unchanged to another stack server."""
    return isinstance(spec, RemoteProviderSpec) and spec.adapter is None


def remote_provider_spec(api: Api, adapter: Optional[AdapterSpec] = None) -> RemoteProviderSpec:
    """Builds the spec of a remote provider: ``remote::<adapter_type>``, or plain ``remote``."""
    if adapter is not None and adapter.config_class:
        config_class = adapter.config_class
    else:
        config_class = "llama_stack.distribution.datatypes.RemoteProviderConfig"
    provider_type = f"remote::{adapter.adapter_type}" if adapter is not None else "remote"
    return RemoteProviderSpec(
        api=api, provider_type=provider_type, config_class=config_class, adapter=adapter
    )

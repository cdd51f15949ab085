"""Run and build configuration of a stack (``<name>-run.yaml`` / ``<name>-build.yaml``).

``StackRunConfig`` reads the 0.0.41 run config (version "2") unchanged. It also accepts three
optional sections that 0.0.41 did not have, ``models``, ``shields`` and ``memory_banks``, which
register objects at startup, and ``metadata_store``, where registrations are persisted.
"""

from datetime import datetime
from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, Field, field_validator

from llama_stack.apis.memory_banks import *  # noqa: F403
from llama_stack.apis.memory_banks import MemoryBankDef, MemoryBankDefWithProvider
from llama_stack.apis.models import *  # noqa: F403
from llama_stack.apis.models import ModelDef, ModelDefWithProvider
from llama_stack.apis.shields import *  # noqa: F403
from llama_stack.apis.shields import ShieldDef, ShieldDefWithProvider
from llama_stack.providers.datatypes import *  # noqa: F403
from llama_stack.providers.datatypes import Api, ProviderSpec

LLAMA_STACK_BUILD_CONFIG_VERSION = "2"
LLAMA_STACK_RUN_CONFIG_VERSION = "2"

RoutingKey = Union[str, List[str]]

RoutableObject = Union[ModelDef, ShieldDef, MemoryBankDef]

RoutableObjectWithProvider = Union[
    ModelDefWithProvider,
    ShieldDefWithProvider,
    MemoryBankDefWithProvider,
]


class AutoRoutedProviderSpec(ProviderSpec):
    """The built-in router of a routed API (inference, safety, memory): it sends each call to the
    provider that serves the object the call names, found through ``routing_table_api``."""

    provider_type: str = "router"
    config_class: str = ""
    docker_image: Optional[str] = None
    routing_table_api: Api
    module: str
    provider_data_validator: Optional[str] = Field(default=None)

    @property
    def pip_packages(self) -> List[str]:
        raise AssertionError("a router is built into the stack and installs no packages")


class RoutingTableProviderSpec(ProviderSpec):
    """The built-in registry of a routed API's objects (models, shields, memory banks), kept over
    the providers of ``router_api``."""

    provider_type: str = "routing_table"
    config_class: str = ""
    docker_image: Optional[str] = None
    router_api: Api
    module: str
    pip_packages: List[str] = Field(default_factory=list)


class DistributionSpec(BaseModel):
    """Which provider types a distribution is built with, per API."""

    description: Optional[str] = Field(default="", description="Human-readable summary")
    docker_image: Optional[str] = None
    providers: Dict[str, Union[str, List[str]]] = Field(
        default_factory=dict,
        description="Provider type(s) per API name",
    )


class Provider(BaseModel):
    """One configured provider instance serving an API."""

    provider_id: str
    provider_type: str
    config: Dict[str, Any]


class StackRunConfig(BaseModel):
    """Everything needed to start a stack: APIs to serve and the providers behind them."""

    version: str = LLAMA_STACK_RUN_CONFIG_VERSION
    built_at: datetime = Field(default_factory=datetime.now)
    image_name: str = Field(description="Name of the distribution build this config belongs to")
    docker_image: Optional[str] = Field(default=None, description="Container image, if any")
    conda_env: Optional[str] = Field(default=None, description="Conda environment, if any")
    apis: List[str] = Field(
        default_factory=list,
        description="APIs to serve; empty means every API that has a provider",
    )
    providers: Dict[str, List[Provider]] = Field(
        description="Provider instances per API name; one provider type may appear several times",
    )
    models: List[ModelDefWithProvider] = Field(
        default_factory=list,
        description="Models to register at startup",
    )
    shields: List[ShieldDefWithProvider] = Field(
        default_factory=list,
        description="Shields to register at startup",
    )
    memory_banks: List[MemoryBankDefWithProvider] = Field(
        default_factory=list,
        description="Memory banks to register at startup",
    )
    metadata_store: Optional[Dict[str, Any]] = Field(
        default=None,
        description="Key-value store where registrations are persisted; none keeps them in memory",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 2` as an integer; it means the same as "2".
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class BuildConfig(BaseModel):
    """What ``llama stack build`` produces: a named distribution and how it is packaged."""

    version: str = LLAMA_STACK_BUILD_CONFIG_VERSION
    name: str
    distribution_spec: DistributionSpec = Field(description="Providers to build in, per API")
    image_type: str = Field(default="conda", description="Packaging: conda or container")

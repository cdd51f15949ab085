"""Model registry API: which models the stack serves and which provider serves each one."""

from typing import Any, Dict, List, Optional, Protocol, runtime_checkable

from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field


class ModelDef(BaseModel):
    """A servable model as the stack names it, tied to a core Llama model."""

    identifier: str = Field(description="Name clients use to address this model")
    llama_model: str = Field(
        description="Descriptor of the core Llama model behind this entry (e.g. Llama3.1-8B-Instruct)",
    )
    metadata: Dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form extra information about the model",
    )


@json_schema_type
class ModelDefWithProvider(ModelDef):
    """A model definition together with the provider instance that serves it."""

    provider_id: str = Field(description="Id of the provider instance serving this model")


@json_schema_type
class RegisterModelRequest(BaseModel):
    """Body of ``POST /models/register``."""

    model: ModelDefWithProvider


@runtime_checkable
class Models(Protocol):
    @webmethod(route="/models/list", method="GET")
    async def list_models(self) -> List[ModelDefWithProvider]: ...

    @webmethod(route="/models/get", method="GET")
    async def get_model(self, identifier: str) -> Optional[ModelDefWithProvider]: ...

    @webmethod(route="/models/register", method="POST")
    async def register_model(self, model: ModelDefWithProvider) -> None: ...

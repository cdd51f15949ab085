"""Shield registry API: the safety checks the stack can run and their providers."""

from enum import Enum
from typing import Any, Dict, List, Optional, Protocol, runtime_checkable

from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field


@json_schema_type
class ShieldType(Enum):
    generic_content_shield = "generic_content_shield"
    llama_guard = "llama_guard"
    code_scanner = "code_scanner"
    prompt_guard = "prompt_guard"


class ShieldDef(BaseModel):
    """A named safety check."""

    identifier: str = Field(description="Name used to invoke the shield (``shield_type`` in requests)")
    # A plain string on the wire; the known values are those of ShieldType.
    type: str = Field(description="Kind of shield, one of the ShieldType values")
    params: Dict[str, Any] = Field(
        default_factory=dict,
        description="Shield-specific settings",
    )


@json_schema_type
class ShieldDefWithProvider(ShieldDef):
    """A shield definition together with the provider instance that runs it."""

    provider_id: str = Field(description="Id of the provider instance running this shield")


@json_schema_type
class RegisterShieldRequest(BaseModel):
    """Body of ``POST /shields/register``."""

    shield: ShieldDefWithProvider


@runtime_checkable
class Shields(Protocol):
    @webmethod(route="/shields/list", method="GET")
    async def list_shields(self) -> List[ShieldDefWithProvider]: ...

    @webmethod(route="/shields/get", method="GET")
    async def get_shield(self, shield_type: str) -> Optional[ShieldDefWithProvider]: ...

    @webmethod(route="/shields/register", method="POST")
    async def register_shield(self, shield: ShieldDefWithProvider) -> None: ...

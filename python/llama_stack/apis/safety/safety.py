"""Safety API: run a registered shield over a conversation."""

from enum import Enum
from typing import Any, Dict, List, Optional, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import Message
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field

from llama_stack.apis.shields import *  # noqa: F403
from llama_stack.apis.shields import ShieldDef


@json_schema_type
class ViolationLevel(Enum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@json_schema_type
class SafetyViolation(BaseModel):
    """What a shield found wrong."""

    violation_level: ViolationLevel
    # Text suitable to show the end user instead of the blocked content.
    user_message: Optional[str] = None
    # Details for logs and debugging, e.g. {"violation_type": "S1"}.
    metadata: Dict[str, Any] = Field(default_factory=dict)


@json_schema_type
class RunShieldResponse(BaseModel):
    """``violation`` is null when the shield let the conversation through."""

    violation: Optional[SafetyViolation] = None


@json_schema_type
class RunShieldRequest(BaseModel):
    """Body of ``POST /safety/run_shield``."""

    shield_type: str
    messages: List[Message]
    # The wire schema lists params as required, but the official server accepts a body without
    # it (the method default is None), so a missing value is allowed here too.
    params: Optional[Dict[str, Any]] = None


class ShieldStore(Protocol):
    """Lookup of registered shields, handed to safety providers by the stack."""

    def get_shield(self, identifier: str) -> ShieldDef: ...


@runtime_checkable
class Safety(Protocol):
    shield_store: ShieldStore

    @webmethod(route="/safety/run_shield", method="POST")
    async def run_shield(
        self,
        shield_type: str,
        messages: List[Message],
        params: Optional[Dict[str, Any]] = None,
    ) -> RunShieldResponse: ...

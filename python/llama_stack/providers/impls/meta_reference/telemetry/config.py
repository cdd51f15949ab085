"""Settings of the reference telemetry provider, which logs events to the console and keeps traces."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field

from llama_stack.providers.utils.kvstore import KVStoreConfig


@json_schema_type
class ConsoleConfig(BaseModel):
    """``meta-reference`` telemetry."""

    persistence_store: Optional[KVStoreConfig] = Field(
        default=None,
        description="Key-value store where traces survive a restart; none keeps them in memory only",
    )

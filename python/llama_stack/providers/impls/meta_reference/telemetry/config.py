"""Settings of the reference telemetry provider, which logs events to the console."""

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel


@json_schema_type
class ConsoleConfig(BaseModel):
    """``meta-reference`` telemetry: no fields."""

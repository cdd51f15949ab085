"""Settings of the reference memory provider (an in-process FAISS index)."""

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel


@json_schema_type
class FaissImplConfig(BaseModel):
    """``meta-reference`` memory: no fields."""

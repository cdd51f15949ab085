"""Settings of the reference memory provider (banks, documents and vectors kept in a kv store).

0.0.41's class had no fields; every field here is optional, so a config written for it loads.
"""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field

from llama_stack.providers.utils.kvstore import KVStoreConfig


@json_schema_type
class FaissImplConfig(BaseModel):
    """``meta-reference`` memory."""

    kvstore: Optional[KVStoreConfig] = Field(
        default=None, description="Store for banks, documents and vectors; unset: the stack's metadata_store"
    )
    allow_private_urls: bool = Field(
        default=False, description="Let documents be fetched from private, loopback and link-local addresses"
    )
    max_document_bytes: int = Field(default=10485760, gt=0, description="Largest document, in bytes, fetched or decoded")
    fetch_timeout_seconds: float = Field(default=30.0, gt=0, description="Time limit for fetching one document URL")
    tokenizer: Optional[str] = Field(
        default=None, description="Path of a Llama 3 tokenizer.model for chunking; unset: the one in llama_models"
    )
    exact_search_limit: int = Field(
        default=20000, ge=0, description="Vector banks with more chunks than this use the approximate index"
    )

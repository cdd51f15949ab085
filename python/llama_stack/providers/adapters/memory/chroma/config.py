"""Settings of the Chroma memory provider."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import Field

from llama_stack.providers.datatypes import RemoteProviderConfig


@json_schema_type
class ChromaConfig(RemoteProviderConfig):
    """``remote::chromadb``: the Chroma server's host and port (as a ``RemoteProviderConfig``),
    and where in it the banks live."""

    tenant: str = Field(default="default_tenant", description="Chroma tenant")
    database: str = Field(default="default_database", description="Chroma database")
    allow_private_urls: bool = Field(
        default=False,
        description="Let documents be fetched from private, loopback and link-local addresses",
    )
    tokenizer: Optional[str] = Field(
        default=None,
        description="Path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
    )

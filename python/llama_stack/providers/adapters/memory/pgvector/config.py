"""Settings of the PostgreSQL + pgvector memory provider."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class PGVectorConfig(BaseModel):
    """``remote::pgvector``: a PostgreSQL database with the pgvector extension."""

    host: str = Field(default="localhost", description="PostgreSQL host")
    port: int = Field(default=5432, ge=0, le=65535, description="PostgreSQL port")
    db: str = Field(description="Database name")
    user: str = Field(description="User name")
    password: str = Field(description="Password")
    allow_private_urls: bool = Field(
        default=False,
        description="Let documents be fetched from private, loopback and link-local addresses",
    )
    tokenizer: Optional[str] = Field(
        default=None,
        description="Path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
    )

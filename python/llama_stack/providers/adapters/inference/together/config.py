"""Settings of the Together AI inference provider."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class TogetherImplConfig(BaseModel):
    """``remote::together``."""

    url: str = Field(default="https://api.together.xyz/v1", description="Together API base URL")
    api_key: Optional[str] = Field(
        default=None,
        description="API key; a request may instead carry `together_api_key` in its provider data",
    )
    timeout: float = Field(default=300.0, gt=0, description="Seconds allowed for a whole response")

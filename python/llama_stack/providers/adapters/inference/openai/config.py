"""Settings of the provider for any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, ...)."""

from typing import List, Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class OpenAIImplConfig(BaseModel):
    """``remote::openai``."""

    url: str = Field(
        default="https://api.openai.com/v1",
        description="Base URL of the server, ending in /v1",
    )
    api_key: Optional[str] = Field(
        default=None,
        description="API key; a request may instead carry `openai_api_key` in its provider data",
    )
    models: Optional[List[str]] = Field(
        default=None,
        description="Model names to serve; unset: whatever the server's /models lists",
    )
    timeout: float = Field(default=300.0, gt=0, description="Seconds allowed for a whole response")

"""Settings of the Fireworks AI inference provider."""

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class FireworksImplConfig(BaseModel):
    """``remote::fireworks``."""

    url: str = Field(default="https://api.fireworks.ai/inference", description="Fireworks API base URL")
    api_key: str = Field(
        default="",
        description="API key; a request may instead carry `fireworks_api_key` in its provider data",
    )
    timeout: float = Field(default=300.0, gt=0, description="Seconds allowed for a whole response")

"""Settings of the Together AI safety provider (Llama Guard hosted by Together)."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


class TogetherProviderDataValidator(BaseModel):
    """What a request's provider data may carry for Together: the caller's own key."""

    together_api_key: str


@json_schema_type
class TogetherSafetyConfig(BaseModel):
    """``remote::together`` safety."""

    url: str = Field(default="https://api.together.xyz/v1", description="Together API base URL")
    api_key: Optional[str] = Field(
        default=None,
        description="Key used when a request carries none in its provider data",
    )

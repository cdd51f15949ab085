"""Settings of the Databricks model-serving provider."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class DatabricksImplConfig(BaseModel):
    """``remote::databricks``."""

    url: Optional[str] = Field(
        default=None,
        description="Serving endpoints URL, https://<workspace>/serving-endpoints",
    )
    api_token: Optional[str] = Field(default=None, description="Databricks access token")
    timeout: float = Field(default=300.0, gt=0, description="Seconds allowed for a whole response")

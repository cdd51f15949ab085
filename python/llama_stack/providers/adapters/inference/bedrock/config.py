"""Settings of the AWS Bedrock inference provider.

Every credential left unset falls back to the usual AWS environment variables and profiles.
"""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class BedrockConfig(BaseModel):
    """``remote::bedrock``."""

    aws_access_key_id: Optional[str] = Field(default=None, description="Access key id (AWS_ACCESS_KEY_ID)")
    aws_secret_access_key: Optional[str] = Field(
        default=None, description="Secret access key (AWS_SECRET_ACCESS_KEY)"
    )
    aws_session_token: Optional[str] = Field(default=None, description="Session token (AWS_SESSION_TOKEN)")
    region_name: Optional[str] = Field(default=None, description="Region, e.g. us-west-2 (AWS_DEFAULT_REGION)")
    profile_name: Optional[str] = Field(default=None, description="Credentials profile (AWS_PROFILE)")
    total_max_attempts: Optional[int] = Field(
        default=None,
        ge=1,
        description="Attempts per call, the first included (AWS_MAX_ATTEMPTS)",
    )
    retry_mode: Optional[str] = Field(
        default=None,
        description="Retry mode: legacy, standard or adaptive (AWS_RETRY_MODE)",
    )
    connect_timeout: Optional[float] = Field(default=60.0, gt=0, description="Seconds allowed to connect")
    read_timeout: Optional[float] = Field(default=60.0, gt=0, description="Seconds allowed for a read")
    endpoint_url: Optional[str] = Field(
        default=None,
        description="Bedrock Runtime URL; default: the region's public endpoint, or "
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME / AWS_ENDPOINT_URL",
    )

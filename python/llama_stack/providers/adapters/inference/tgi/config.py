"""Settings of the three Hugging Face text-generation-inference providers.

``timeout``, ``tokenizer``, ``api_url`` and ``wait`` go beyond 0.0.41's fields; they are optional
and default to what the core assumes when they are absent.
"""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field

_TOKEN = "Hugging Face access token, sent as a bearer token"
_TIMEOUT = "Seconds allowed for a whole response"
_TOKENIZER = "Path of a Llama 3 tokenizer.model, used to keep max_new_tokens within the server's token limit"


@json_schema_type
class TGIImplConfig(BaseModel):
    """``remote::tgi``: a text-generation-inference server you run yourself."""

    url: str = Field(description="Base URL of the server, e.g. http://localhost:8080")
    api_token: Optional[str] = Field(default=None, description=_TOKEN)
    timeout: float = Field(default=300.0, gt=0, description=_TIMEOUT)
    tokenizer: Optional[str] = Field(default=None, description=_TOKENIZER)


@json_schema_type
class InferenceEndpointImplConfig(BaseModel):
    """``remote::hf::endpoint``: a dedicated Hugging Face Inference Endpoint."""

    endpoint_name: str = Field(
        description="Endpoint as `namespace/name`; without a namespace the token's user is assumed",
    )
    api_token: Optional[str] = Field(default=None, description=_TOKEN)
    api_url: str = Field(
        default="https://api.endpoints.huggingface.cloud/v2",
        description="Base URL of the Inference Endpoints management API",
    )
    wait: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a request waits for an endpoint that is still starting",
    )
    timeout: float = Field(default=300.0, gt=0, description=_TIMEOUT)
    tokenizer: Optional[str] = Field(default=None, description=_TOKENIZER)


@json_schema_type
class InferenceAPIImplConfig(BaseModel):
    """``remote::hf::serverless``: a model on the serverless Inference API."""

    huggingface_repo: str = Field(description="Model repository, e.g. meta-llama/Llama-3.1-8B-Instruct")
    api_token: Optional[str] = Field(default=None, description=_TOKEN)
    api_url: str = Field(
        default="https://api-inference.huggingface.co",
        description="Base URL of the serverless Inference API",
    )
    timeout: float = Field(default=300.0, gt=0, description=_TIMEOUT)
    tokenizer: Optional[str] = Field(default=None, description=_TOKENIZER)

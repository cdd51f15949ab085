"""Settings of the Weaviate memory provider.

The provider itself takes no settings: each request names its Weaviate cluster and key in its
provider data.
"""

from typing import Optional

from pydantic import BaseModel, Field


class WeaviateRequestProviderData(BaseModel):
    """Provider data a request to Weaviate must carry."""

    weaviate_api_key: str
    weaviate_cluster_url: str


class WeaviateConfig(BaseModel):
    """``remote::weaviate``: nothing is required (the cluster comes with each request)."""

    allow_private_urls: bool = Field(
        default=False,
        description="Let documents be fetched from private, loopback and link-local addresses",
    )
    tokenizer: Optional[str] = Field(
        default=None,
        description="Path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
    )

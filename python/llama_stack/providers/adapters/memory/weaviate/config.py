"""Settings of the Weaviate memory provider.

The provider itself takes no settings: each request names its Weaviate cluster and key in its
provider data.
"""

from pydantic import BaseModel


class WeaviateRequestProviderData(BaseModel):
    """Provider data a request to Weaviate must carry."""

    weaviate_api_key: str
    weaviate_cluster_url: str


class WeaviateConfig(BaseModel):
    """``remote::weaviate``: no fields."""

"""Config of ``remote::weaviate``, and the provider data it reads."""

from .config import WeaviateConfig, WeaviateRequestProviderData

__all__ = ["WeaviateConfig", "WeaviateRequestProviderData"]

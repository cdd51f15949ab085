"""Config of ``remote::chromadb``: the address of the Chroma server (host and port), as
``RemoteProviderConfig``, plus optional settings in ``ChromaConfig``."""

from llama_stack.providers.datatypes import RemoteProviderConfig

from .config import ChromaConfig

__all__ = ["ChromaConfig", "RemoteProviderConfig"]

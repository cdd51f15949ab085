"""``remote::chromadb`` is configured by the address of the Chroma server: host and port."""

from llama_stack.providers.datatypes import RemoteProviderConfig

__all__ = ["RemoteProviderConfig"]

"""Config of ``remote::openai``."""

from .config import OpenAIImplConfig

__all__ = ["OpenAIImplConfig"]

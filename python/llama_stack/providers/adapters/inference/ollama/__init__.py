"""Config of ``remote::ollama``."""

from .config import OllamaImplConfig

__all__ = ["OllamaImplConfig"]

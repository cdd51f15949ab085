"""Config of ``embedded`` inference."""

from .config import EmbeddedConfig

__all__ = ["EmbeddedConfig"]

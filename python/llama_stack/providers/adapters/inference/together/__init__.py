"""Config of ``remote::together`` inference."""

from .config import TogetherImplConfig

__all__ = ["TogetherImplConfig"]

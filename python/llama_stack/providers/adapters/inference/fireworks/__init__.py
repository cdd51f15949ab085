"""Config of ``remote::fireworks``."""

from .config import FireworksImplConfig

__all__ = ["FireworksImplConfig"]

"""Config of ``meta-reference`` memory."""

from .config import FaissImplConfig

__all__ = ["FaissImplConfig"]

"""Config of ``meta-reference`` agents."""

from .config import MetaReferenceAgentsImplConfig

__all__ = ["MetaReferenceAgentsImplConfig"]

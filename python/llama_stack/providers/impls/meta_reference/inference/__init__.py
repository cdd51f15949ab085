"""Config of ``meta-reference`` inference."""

from .config import MetaReferenceImplConfig

__all__ = ["MetaReferenceImplConfig"]

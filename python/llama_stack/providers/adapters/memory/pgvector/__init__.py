"""Config of ``remote::pgvector``."""

from .config import PGVectorConfig

__all__ = ["PGVectorConfig"]

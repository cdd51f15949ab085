"""Config of ``remote::databricks``."""

from .config import DatabricksImplConfig

__all__ = ["DatabricksImplConfig"]

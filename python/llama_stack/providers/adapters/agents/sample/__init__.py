"""Config of the example agents adapter."""

from .config import SampleConfig

__all__ = ["SampleConfig"]

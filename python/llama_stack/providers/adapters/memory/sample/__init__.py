"""Config of the example memory adapter."""

from .config import SampleConfig

__all__ = ["SampleConfig"]

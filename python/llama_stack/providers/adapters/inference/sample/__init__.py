"""Config of the example inference adapter."""

from .config import SampleConfig

__all__ = ["SampleConfig"]

"""Config of the example safety adapter."""

from .config import SampleConfig

__all__ = ["SampleConfig"]

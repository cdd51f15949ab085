"""Config of the example telemetry adapter."""

from .config import SampleConfig

__all__ = ["SampleConfig"]

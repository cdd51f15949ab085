"""Config of ``meta-reference`` telemetry."""

from .config import ConsoleConfig

__all__ = ["ConsoleConfig"]

"""Config of ``remote::opentelemetry-jaeger``."""

from .config import OpenTelemetryConfig

__all__ = ["OpenTelemetryConfig"]

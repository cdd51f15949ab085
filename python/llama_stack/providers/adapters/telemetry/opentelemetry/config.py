"""Settings of the OpenTelemetry exporter that sends spans to a Jaeger agent."""

from pydantic import BaseModel, Field


class OpenTelemetryConfig(BaseModel):
    """``remote::opentelemetry-jaeger``."""

    jaeger_host: str = Field(default="localhost", description="Host of the Jaeger agent")
    jaeger_port: int = Field(default=6831, ge=0, le=65535, description="UDP port of the Jaeger agent")

"""Settings of the OpenTelemetry exporter (OTLP over HTTP, as Jaeger and collectors accept it)."""

from typing import Optional

from pydantic import BaseModel, Field


class OpenTelemetryConfig(BaseModel):
    """``remote::opentelemetry-jaeger``."""

    jaeger_host: str = Field(default="localhost", description="Host of the Jaeger collector")
    jaeger_port: int = Field(
        default=6831, ge=0, le=65535, description="Jaeger port; the agent's 6831 means OTLP/HTTP on 4318"
    )
    otlp_endpoint: Optional[str] = Field(
        default=None, description="OTLP/HTTP base URL, overrides host and port"
    )
    service_name: str = Field(default="llama-stack", description="service.name of the exported resource")

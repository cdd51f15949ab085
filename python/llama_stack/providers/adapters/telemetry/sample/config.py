"""Settings of the example telemetry adapter, a starting point for writing a new one."""

from pydantic import BaseModel, Field


class SampleConfig(BaseModel):
    """Address of the service the example adapter talks to."""

    host: str = "localhost"
    port: int = Field(default=9999, ge=0, le=65535)

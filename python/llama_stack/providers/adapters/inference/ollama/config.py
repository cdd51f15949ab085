"""Settings of the Ollama inference provider."""

from typing import Optional

from pydantic import BaseModel, Field


class OllamaImplConfig(BaseModel):
    """``remote::ollama``: an Ollama server, by host and port or by full URL."""

    host: str = Field(default="localhost", description="Host the Ollama server listens on")
    port: int = Field(default=11434, ge=0, le=65535, description="Port of the Ollama server")
    url: Optional[str] = Field(
        default=None,
        description="Full base URL; when set it replaces host and port",
    )
    timeout: float = Field(default=300.0, gt=0, description="Seconds allowed for a whole response")

    @property
    def base_url(self) -> str:
        """The URL requests go to: ``url`` when set, else ``http://host:port``."""
        return self.url if self.url else f"http://{self.host}:{self.port}"

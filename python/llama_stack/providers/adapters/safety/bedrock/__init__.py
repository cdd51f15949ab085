"""Config of ``remote::bedrock`` safety."""

from .config import BedrockSafetyConfig

__all__ = ["BedrockSafetyConfig"]

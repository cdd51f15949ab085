"""Config of ``remote::bedrock`` inference."""

from .config import BedrockConfig

__all__ = ["BedrockConfig"]

"""Config of ``remote::together`` safety, and the provider data it reads."""

from .config import TogetherProviderDataValidator, TogetherSafetyConfig

__all__ = ["TogetherProviderDataValidator", "TogetherSafetyConfig"]

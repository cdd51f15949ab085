"""Configs of ``remote::tgi``, ``remote::hf::serverless`` and ``remote::hf::endpoint``."""

from .config import InferenceAPIImplConfig, InferenceEndpointImplConfig, TGIImplConfig

__all__ = ["InferenceAPIImplConfig", "InferenceEndpointImplConfig", "TGIImplConfig"]

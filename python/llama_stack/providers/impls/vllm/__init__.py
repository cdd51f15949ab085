"""Config of ``vllm`` inference."""

from .config import VLLMConfig

__all__ = ["VLLMConfig"]

"""Config of ``meta-reference`` safety."""

from .config import LlamaGuardShieldConfig, PromptGuardType, SafetyConfig

__all__ = ["LlamaGuardShieldConfig", "PromptGuardType", "SafetyConfig"]

"""Config of ``meta-reference/codeshield``."""

from .config import CodeShieldConfig

__all__ = ["CodeShieldConfig"]

"""Settings of the CodeShield scanner for insecure code in model output."""

from pydantic import BaseModel


class CodeShieldConfig(BaseModel):
    """``meta-reference/codeshield``: no fields."""

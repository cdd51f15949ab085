"""Settings of the reference safety provider: Llama Guard and Prompt Guard shields."""

from enum import Enum
from typing import List, Optional

from pydantic import BaseModel, Field, field_validator


class PromptGuardType(Enum):
    injection = "injection"
    jailbreak = "jailbreak"


def _llama_guard_descriptors() -> List[str]:
    from llama_models.sku_list import CoreModelId, safety_models

    guard3 = {CoreModelId.llama_guard_3_8b, CoreModelId.llama_guard_3_1b, CoreModelId.llama_guard_3_11b_vision}
    return [m.descriptor() for m in safety_models() if m.core_model_id in guard3]


class LlamaGuardShieldConfig(BaseModel):
    """Which Llama Guard 3 model checks messages, and which hazard categories it ignores."""

    model: str = "Llama-Guard-3-1B"
    excluded_categories: List[str] = Field(default_factory=list)
    disable_input_check: bool = False
    disable_output_check: bool = False

    @field_validator("model")
    @classmethod
    def _guard_model(cls, model: str) -> str:
        permitted = _llama_guard_descriptors()
        if model not in permitted:
            raise ValueError(f"unknown Llama Guard model `{model}`; choose one of: {', '.join(permitted)}")
        return model


class SafetyConfig(BaseModel):
    """``meta-reference`` safety. The Prompt Guard shield reads a Hugging Face model folder
    (``config.json``, ``model.safetensors``, ``tokenizer.json``), by default
    ``$LLAMA_STACK_CONFIG_DIR/checkpoints/Prompt-Guard-86M``."""

    llama_guard_shield: Optional[LlamaGuardShieldConfig] = None
    enable_prompt_guard: Optional[bool] = False
    prompt_guard_model_dir: Optional[str] = None
    prompt_guard_threshold: float = 0.9
    prompt_guard_type: str = PromptGuardType.injection.value

    @field_validator("prompt_guard_threshold")
    @classmethod
    def _probability(cls, threshold: float) -> float:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"prompt_guard_threshold {threshold} is not a probability between 0 and 1")
        return threshold

    @field_validator("prompt_guard_type")
    @classmethod
    def _guard_type(cls, kind: str) -> str:
        allowed = [t.value for t in PromptGuardType]
        if kind not in allowed:
            raise ValueError(f"prompt_guard_type `{kind}` must be one of: {', '.join(allowed)}")
        return kind

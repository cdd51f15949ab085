"""Which Llama models an in-process inference provider may be configured with."""

from typing import List

from llama_models.datatypes import CheckpointQuantizationFormat, CoreModelId, Model, ModelFamily
from llama_models.sku_list import all_registered_models

# Llama Guard 3 checkpoints; Llama Guard 2 is not served.
_GUARD_MODELS = {
    CoreModelId.llama_guard_3_8b,
    CoreModelId.llama_guard_3_1b,
    CoreModelId.llama_guard_3_11b_vision,
}


def is_supported_safety_model(model: Model) -> bool:
    """True for a full-precision Llama Guard 3 checkpoint."""
    return model.quantization_format == CheckpointQuantizationFormat.bf16 and model.core_model_id in _GUARD_MODELS


def supported_inference_models() -> List[str]:
    """Descriptors of every Llama 3.1 / 3.2 model and every supported Llama Guard model."""
    families = {ModelFamily.llama3_1, ModelFamily.llama3_2}
    return [
        m.descriptor()
        for m in all_registered_models()
        if m.model_family in families or is_supported_safety_model(m)
    ]


def check_inference_model(model: str) -> str:
    """Returns ``model`` if it is supported; the error lists the valid descriptors."""
    permitted = supported_inference_models()
    if model not in permitted:
        raise ValueError(f"unknown model `{model}`; choose one of: {', '.join(permitted)}")
    return model


__all__ = ["check_inference_model", "is_supported_safety_model", "supported_inference_models"]

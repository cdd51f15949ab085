"""Settings of the reference inference provider (PyTorch on CUDA GPUs)."""

from typing import Optional

from pydantic import BaseModel, Field, field_validator

from llama_stack.apis.inference import QuantizationConfig
from llama_stack.providers.utils.inference import check_inference_model


class MetaReferenceImplConfig(BaseModel):
    """``meta-reference`` inference."""

    model: str = Field(
        default="Llama3.1-8B-Instruct",
        description="Model descriptor (see `llama model list`) whose checkpoint is downloaded",
    )
    quantization: Optional[QuantizationConfig] = None
    torch_seed: Optional[int] = None
    max_seq_len: int = Field(default=4096, ge=1)
    max_batch_size: int = Field(default=1, ge=1)

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        return check_inference_model(model)

    @property
    def model_parallel_size(self) -> int:
        """How many checkpoint shards (and so GPUs) the model is split into."""
        from llama_models.sku_list import resolve_model

        resolved = resolve_model(self.model)
        if resolved is None:
            raise ValueError(f"unknown model `{self.model}`")
        return resolved.pth_file_count

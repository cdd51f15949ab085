"""Settings of the in-process vLLM inference provider."""

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field, field_validator

from llama_stack.providers.utils.inference import check_inference_model


@json_schema_type
class VLLMConfig(BaseModel):
    """``vllm``: a model served by vLLM inside the stack's process."""

    model: str = Field(
        default="Llama3.1-8B-Instruct",
        description="Model descriptor (see `llama model list`)",
    )
    tensor_parallel_size: int = Field(
        default=1,
        ge=1,
        description="GPUs the model is split across",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        return check_inference_model(model)

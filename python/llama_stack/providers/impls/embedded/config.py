"""Settings of the embedded inference provider: GGUF models run on the CPU inside the core."""

from typing import Optional

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class EmbeddedConfig(BaseModel):
    """``embedded``."""

    model: str = Field(
        default="SmolLM2-135M-Instruct",
        description="Model id from the model cache, or the path of a .gguf file",
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Sentence-embedding model id, or a folder with safetensors and tokenizer.json; "
        "empty to serve no embeddings",
    )
    threads: Optional[int] = Field(
        default=None,
        ge=1,
        description="CPU threads for generation; unset: one less than the cores, at least one",
    )
    context_length: int = Field(default=4096, ge=1, description="Context window in tokens")
    max_concurrent: int = Field(
        default=1,
        ge=1,
        description="Requests generated at the same time; the others wait their turn",
    )

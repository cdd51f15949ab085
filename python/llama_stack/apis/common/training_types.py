"""Types describing the output of training runs."""

from llama_models.llama3.api.datatypes import URL
from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel


@json_schema_type(schema={"description": "Checkpoint created during training runs"})
class Checkpoint(BaseModel):
    """Weights saved at some point of a training run."""

    iters: int
    path: URL
    epoch: int

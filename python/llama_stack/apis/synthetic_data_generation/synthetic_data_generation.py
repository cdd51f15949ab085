"""Synthetic data generation API: sample replies to prompts, score them, keep the best.

The route is part of the wire contract only; no provider implements it.
"""

from enum import Enum
from typing import Any, Dict, List, Optional, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import Message
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel

from llama_stack.apis.reward_scoring import *  # noqa: F403

from llama_stack.apis.reward_scoring import ScoredDialogGenerations


class FilteringFunction(Enum):
    """How generated samples are filtered by their scores."""

    none = "none"
    random = "random"
    top_k = "top_k"
    top_p = "top_p"
    top_k_top_p = "top_k_top_p"
    sigmoid = "sigmoid"


@json_schema_type
class SyntheticDataGenerationRequest(BaseModel):
    """A batch of prompts, the filter applied to what gets generated, and the model to use."""

    dialogs: List[Message]
    filtering_function: FilteringFunction = FilteringFunction.none
    model: Optional[str] = None


@json_schema_type
class SyntheticDataGenerateRequest(SyntheticDataGenerationRequest):
    """Body of ``POST /synthetic_data_generation/generate``."""


@json_schema_type
class SyntheticDataGenerationResponse(BaseModel):
    """The scored samples that passed the filter, with optional statistics about the run."""

    synthetic_data: List[ScoredDialogGenerations]
    statistics: Optional[Dict[str, Any]] = None


@runtime_checkable
class SyntheticDataGeneration(Protocol):
    @webmethod(route="/synthetic_data_generation/generate", method="POST")
    def synthetic_data_generate(
        self,
        dialogs: List[Message],
        filtering_function: FilteringFunction = FilteringFunction.none,
        model: Optional[str] = None,
    ) -> SyntheticDataGenerationResponse: ...

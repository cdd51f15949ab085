"""Reward scoring API: a reward model scores sampled replies to dialogs.

The route is part of the wire contract only; no provider implements it.
"""

from typing import List, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import Message
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel


@json_schema_type
class ScoredMessage(BaseModel):
    message: Message
    score: float


@json_schema_type
class DialogGenerations(BaseModel):
    """A dialog and several candidate replies sampled for it."""

    dialog: List[Message]
    sampled_generations: List[Message]


@json_schema_type
class ScoredDialogGenerations(BaseModel):
    """A dialog and its candidate replies, each with the score it got."""

    dialog: List[Message]
    scored_generations: List[ScoredMessage]


@json_schema_type
class RewardScoringRequest(BaseModel):
    """Dialogs with candidate replies, and the reward model that scores them."""

    dialog_generations: List[DialogGenerations]
    model: str


@json_schema_type
class RewardScoreRequest(RewardScoringRequest):
    """Body of ``POST /reward_scoring/score``."""


@json_schema_type
class RewardScoringResponse(BaseModel):
    """The scored replies that passed the threshold."""

    scored_generations: List[ScoredDialogGenerations]


@runtime_checkable
class RewardScoring(Protocol):
    @webmethod(route="/reward_scoring/score", method="POST")
    def reward_score(
        self,
        dialog_generations: List[DialogGenerations],
        model: str,
    ) -> RewardScoringResponse: ...

"""Evaluations API: scoring a checkpoint on a data set, run as jobs.

The routes are part of the wire contract only; no provider implements them.
"""

from enum import Enum
from typing import List, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import SamplingParams
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel

from llama_stack.apis.common.training_types import *  # noqa: F403
from llama_stack.apis.datasets import *  # noqa: F403

from llama_stack.apis.common.training_types import Checkpoint
from llama_stack.apis.datasets import TrainEvalDataset


class TextGenerationMetric(Enum):
    perplexity = "perplexity"
    rouge = "rouge"
    bleu = "bleu"


class QuestionAnsweringMetric(Enum):
    em = "em"
    f1 = "f1"


class SummarizationMetric(Enum):
    rouge = "rouge"
    bleu = "bleu"


class EvaluationJob(BaseModel):
    job_uuid: str


class EvaluationJobLogStream(BaseModel):
    job_uuid: str


class EvaluateTaskRequestCommon(BaseModel):
    """The full description of an evaluation run: what to score, on what, and how to sample."""

    job_uuid: str
    dataset: TrainEvalDataset

    checkpoint: Checkpoint

    # Generation settings used while producing the outputs that get scored.
    sampling_params: SamplingParams = SamplingParams()


# The three request bodies below hold only `metrics`: that is what the routes take (the wire
# contract derives each body from the route's signature), so these classes match the wire and
# `EvaluateTaskRequestCommon` keeps the richer description of a run.


@json_schema_type
class EvaluateTextGenerationRequest(BaseModel):
    """Body of ``POST /evaluate/text_generation/``."""

    metrics: List[TextGenerationMetric]


@json_schema_type
class EvaluateQuestionAnsweringRequest(BaseModel):
    """Body of ``POST /evaluate/question_answering/``."""

    metrics: List[QuestionAnsweringMetric]


@json_schema_type
class EvaluateSummarizationRequest(BaseModel):
    """Body of ``POST /evaluate/summarization/``."""

    metrics: List[SummarizationMetric]


class EvaluationJobStatusResponse(BaseModel):
    job_uuid: str


@json_schema_type
class EvaluationJobArtifactsResponse(BaseModel):
    """What an evaluation job produced."""

    job_uuid: str


@json_schema_type
class CancelEvaluationJobRequest(BaseModel):
    """Body of ``POST /evaluate/job/cancel``."""

    job_uuid: str


@runtime_checkable
class Evaluations(Protocol):
    @webmethod(route="/evaluate/text_generation/", method="POST")
    def evaluate_text_generation(
        self,
        metrics: List[TextGenerationMetric],
    ) -> EvaluationJob: ...

    @webmethod(route="/evaluate/question_answering/", method="POST")
    def evaluate_question_answering(
        self,
        metrics: List[QuestionAnsweringMetric],
    ) -> EvaluationJob: ...

    @webmethod(route="/evaluate/summarization/", method="POST")
    def evaluate_summarization(
        self,
        metrics: List[SummarizationMetric],
    ) -> EvaluationJob: ...

    @webmethod(route="/evaluate/jobs", method="GET")
    def get_evaluation_jobs(self) -> List[EvaluationJob]: ...

    @webmethod(route="/evaluate/job/status", method="GET")
    def get_evaluation_job_status(self, job_uuid: str) -> EvaluationJobStatusResponse: ...

    # Streams the job's log lines as server-sent events.
    @webmethod(route="/evaluate/job/logs", method="GET")
    def get_evaluation_job_logstream(self, job_uuid: str) -> EvaluationJobLogStream: ...

    @webmethod(route="/evaluate/job/cancel", method="POST")
    def cancel_evaluation_job(self, job_uuid: str) -> None: ...

    @webmethod(route="/evaluate/job/artifacts", method="GET")
    def get_evaluation_job_artifacts(self, job_uuid: str) -> EvaluationJobArtifactsResponse: ...

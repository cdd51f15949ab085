"""Post-training API: supervised fine-tuning and preference optimisation, run as jobs.

The routes are part of the wire contract only; no provider implements them.
"""

from datetime import datetime
from enum import Enum
from typing import Any, Dict, List, Optional, Protocol, Union, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import URL
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field

from llama_stack.apis.common.training_types import *  # noqa: F403
from llama_stack.apis.datasets import *  # noqa: F403

from llama_stack.apis.common.training_types import Checkpoint
from llama_stack.apis.datasets import TrainEvalDataset


class OptimizerType(Enum):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


@json_schema_type
class OptimizerConfig(BaseModel):
    optimizer_type: OptimizerType
    lr: float
    lr_min: float
    weight_decay: float


@json_schema_type
class TrainingConfig(BaseModel):
    n_epochs: int
    batch_size: int
    shuffle: bool
    n_iters: int

    enable_activation_checkpointing: bool
    memory_efficient_fsdp_wrap: bool
    fsdp_cpu_offload: bool


@json_schema_type
class FinetuningAlgorithm(Enum):
    full = "full"
    lora = "lora"
    qlora = "qlora"
    dora = "dora"


@json_schema_type
class LoraFinetuningConfig(BaseModel):
    """Low-rank adapter settings: which layers get adapters, their rank and scaling."""

    lora_attn_modules: List[str]
    apply_lora_to_mlp: bool
    apply_lora_to_output: bool
    rank: int
    alpha: int


@json_schema_type
class QLoraFinetuningConfig(LoraFinetuningConfig):
    pass


@json_schema_type
class DoraFinetuningConfig(LoraFinetuningConfig):
    pass


@json_schema_type
class PostTrainingJobLogStream(BaseModel):
    """Log lines of a post-training job."""

    job_uuid: str
    log_lines: List[str]


@json_schema_type
class PostTrainingJobStatus(Enum):
    running = "running"
    completed = "completed"
    failed = "failed"
    scheduled = "scheduled"


@json_schema_type
class RLHFAlgorithm(Enum):
    dpo = "dpo"


@json_schema_type
class DPOAlignmentConfig(BaseModel):
    reward_scale: float
    reward_clip: float
    epsilon: float
    gamma: float


# The adapter configurations share one shape, so a JSON body reads as the first of them.
FinetuningAlgorithmConfig = Union[LoraFinetuningConfig, QLoraFinetuningConfig, DoraFinetuningConfig]


@json_schema_type
class PostTrainingSFTRequest(BaseModel):
    """Everything a supervised fine-tuning job needs."""

    job_uuid: str

    model: str
    dataset: TrainEvalDataset
    validation_dataset: TrainEvalDataset

    algorithm: FinetuningAlgorithm
    algorithm_config: FinetuningAlgorithmConfig

    optimizer_config: OptimizerConfig
    training_config: TrainingConfig

    # Free-form until these settings get a schema of their own.
    hyperparam_search_config: Dict[str, Any]
    logger_config: Dict[str, Any]


@json_schema_type
class PostTrainingRLHFRequest(BaseModel):
    """Everything a preference-optimisation job needs."""

    job_uuid: str

    finetuned_model: URL

    dataset: TrainEvalDataset
    validation_dataset: TrainEvalDataset

    algorithm: RLHFAlgorithm
    algorithm_config: DPOAlignmentConfig

    optimizer_config: OptimizerConfig
    training_config: TrainingConfig

    hyperparam_search_config: Dict[str, Any]
    logger_config: Dict[str, Any]


@json_schema_type
class SupervisedFineTuneRequest(PostTrainingSFTRequest):
    """Body of ``POST /post_training/supervised_fine_tune``."""


@json_schema_type
class PreferenceOptimizeRequest(PostTrainingRLHFRequest):
    """Body of ``POST /post_training/preference_optimize``."""


class PostTrainingJob(BaseModel):
    job_uuid: str


@json_schema_type
class PostTrainingJobStatusResponse(BaseModel):
    """Where a post-training job stands, and the checkpoints it has written so far."""

    job_uuid: str
    status: PostTrainingJobStatus

    scheduled_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None

    resources_allocated: Optional[Dict[str, Any]] = None

    checkpoints: List[Checkpoint] = Field(default_factory=list)


@json_schema_type
class PostTrainingJobArtifactsResponse(BaseModel):
    """What a post-training job produced."""

    job_uuid: str
    checkpoints: List[Checkpoint] = Field(default_factory=list)


@json_schema_type
class CancelTrainingJobRequest(BaseModel):
    """Body of ``POST /post_training/job/cancel``."""

    job_uuid: str


@runtime_checkable
class PostTraining(Protocol):
    @webmethod(route="/post_training/supervised_fine_tune", method="POST")
    def supervised_fine_tune(
        self,
        job_uuid: str,
        model: str,
        dataset: TrainEvalDataset,
        validation_dataset: TrainEvalDataset,
        algorithm: FinetuningAlgorithm,
        algorithm_config: FinetuningAlgorithmConfig,
        optimizer_config: OptimizerConfig,
        training_config: TrainingConfig,
        hyperparam_search_config: Dict[str, Any],
        logger_config: Dict[str, Any],
    ) -> PostTrainingJob: ...

    @webmethod(route="/post_training/preference_optimize", method="POST")
    def preference_optimize(
        self,
        job_uuid: str,
        finetuned_model: URL,
        dataset: TrainEvalDataset,
        validation_dataset: TrainEvalDataset,
        algorithm: RLHFAlgorithm,
        algorithm_config: DPOAlignmentConfig,
        optimizer_config: OptimizerConfig,
        training_config: TrainingConfig,
        hyperparam_search_config: Dict[str, Any],
        logger_config: Dict[str, Any],
    ) -> PostTrainingJob: ...

    @webmethod(route="/post_training/jobs", method="GET")
    def get_training_jobs(self) -> List[PostTrainingJob]: ...

    # Streams the job's log lines as server-sent events.
    @webmethod(route="/post_training/job/logs", method="GET")
    def get_training_job_logstream(self, job_uuid: str) -> PostTrainingJobLogStream: ...

    @webmethod(route="/post_training/job/status", method="GET")
    def get_training_job_status(self, job_uuid: str) -> PostTrainingJobStatusResponse: ...

    @webmethod(route="/post_training/job/cancel", method="POST")
    def cancel_training_job(self, job_uuid: str) -> None: ...

    @webmethod(route="/post_training/job/artifacts", method="GET")
    def get_training_job_artifacts(self, job_uuid: str) -> PostTrainingJobArtifactsResponse: ...

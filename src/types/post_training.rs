//! `llama_stack.apis.post_training`: fine-tuning and preference-optimisation jobs (an API of the
//! contract with no implementation behind it upstream), and the checkpoints they leave.

use serde::{Deserialize, Serialize};

use super::common::{JsonObject, Timestamp, Url};
use super::datasets::TrainEvalDataset;
use super::macros::string_enum;

/// A checkpoint written during training. The contract describes it only in prose; the fields
/// are those of upstream's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub iters: i64,
    pub path: Url,
    pub epoch: i64,
}

string_enum!(OptimizerType { Adam = "adam", Adamw = "adamw", Sgd = "sgd" });
string_enum!(FinetuningAlgorithm { Full = "full", Lora = "lora", Qlora = "qlora", Dora = "dora" });
string_enum!(RlhfAlgorithm { Dpo = "dpo" });
string_enum!(PostTrainingJobStatus {
    Running = "running",
    Completed = "completed",
    Failed = "failed",
    Scheduled = "scheduled",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub optimizer_type: OptimizerType,
    pub lr: f64,
    pub lr_min: f64,
    pub weight_decay: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::struct_excessive_bools, reason = "the wire form has these four flags")]
pub struct TrainingConfig {
    pub n_epochs: i64,
    pub batch_size: i64,
    pub shuffle: bool,
    pub n_iters: i64,
    pub enable_activation_checkpointing: bool,
    pub memory_efficient_fsdp_wrap: bool,
    pub fsdp_cpu_offload: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraFinetuningConfig {
    pub lora_attn_modules: Vec<String>,
    pub apply_lora_to_mlp: bool,
    pub apply_lora_to_output: bool,
    pub rank: i64,
    pub alpha: i64,
}

/// Same shape as `LoRA`; the request's `algorithm` says which is meant.
pub type QLoraFinetuningConfig = LoraFinetuningConfig;
/// Same shape as `LoRA`; the request's `algorithm` says which is meant.
pub type DoraFinetuningConfig = LoraFinetuningConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpoAlignmentConfig {
    pub reward_scale: f64,
    pub reward_clip: f64,
    pub epsilon: f64,
    pub gamma: f64,
}

/// `SupervisedFineTuneRequest`. `algorithm_config` is `LoRA`, `QLoRA` or `DoRA`, which share one
/// shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedFineTuneRequest {
    pub job_uuid: String,
    pub model: String,
    pub dataset: TrainEvalDataset,
    pub validation_dataset: TrainEvalDataset,
    pub algorithm: FinetuningAlgorithm,
    pub algorithm_config: LoraFinetuningConfig,
    pub optimizer_config: OptimizerConfig,
    pub training_config: TrainingConfig,
    pub hyperparam_search_config: JsonObject,
    pub logger_config: JsonObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceOptimizeRequest {
    pub job_uuid: String,
    pub finetuned_model: Url,
    pub dataset: TrainEvalDataset,
    pub validation_dataset: TrainEvalDataset,
    pub algorithm: RlhfAlgorithm,
    pub algorithm_config: DpoAlignmentConfig,
    pub optimizer_config: OptimizerConfig,
    pub training_config: TrainingConfig,
    pub hyperparam_search_config: JsonObject,
    pub logger_config: JsonObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostTrainingJob {
    pub job_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostTrainingJobLogStream {
    pub job_uuid: String,
    pub log_lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostTrainingJobStatusResponse {
    pub job_uuid: String,
    pub status: PostTrainingJobStatus,
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub resources_allocated: Option<JsonObject>,
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostTrainingJobArtifactsResponse {
    pub job_uuid: String,
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelTrainingJobRequest {
    pub job_uuid: String,
}

//! `llama_stack.apis.evals`: evaluation jobs and their request bodies (an API of the contract
//! with no implementation behind it upstream).

use serde::{Deserialize, Serialize};

use super::macros::string_enum;

string_enum!(TextGenerationMetric { Perplexity = "perplexity", Rouge = "rouge", Bleu = "bleu" });
string_enum!(QuestionAnsweringMetric { Em = "em", F1 = "f1" });
string_enum!(SummarizationMetric { Rouge = "rouge", Bleu = "bleu" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationJob {
    pub job_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationJobLogStream {
    pub job_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationJobStatusResponse {
    pub job_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationJobArtifactsResponse {
    pub job_uuid: String,
}

// The evaluate routes take only the metrics in their body (the contract's request schemas are
// built from the route signatures). Upstream's same-named models also carry a job id, dataset,
// checkpoint and sampling params; a body sent in that fuller form still reads, the extra keys
// being ignored.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateTextGenerationRequest {
    pub metrics: Vec<TextGenerationMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateQuestionAnsweringRequest {
    pub metrics: Vec<QuestionAnsweringMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateSummarizationRequest {
    pub metrics: Vec<SummarizationMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelEvaluationJobRequest {
    pub job_uuid: String,
}

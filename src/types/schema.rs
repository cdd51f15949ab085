//! Name → type table over every schema of the wire contract, so a JSON document can be read
//! into its Rust type and written back (used by the schema round-trip tests and the bindings).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    agents, common, datasets, evaluations, inference, inspect, memory, memory_banks, models, post_training,
    reward_scoring, safety, shields, synthetic_data_generation, telemetry,
};
use crate::error::{Error, FieldIssue, Result};

/// Reads `json` as `T`, reporting the path of the first mismatch.
pub fn parse_json<T: DeserializeOwned>(json: &[u8], root: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut loc = vec![root.to_owned()];
        loc.extend(e.path().to_string().split('.').filter(|s| !s.is_empty() && *s != "?").map(str::to_owned));
        let inner = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself, as pydantic does.
        let issue = match missing_field(&inner) {
            Some(field) => {
                loc.push(field.to_owned());
                FieldIssue { loc, msg: "Field required".into(), kind: "missing".into() }
            }
            None => FieldIssue { loc, msg: inner, kind: "value_error".into() },
        };
        Error::Validation(vec![issue])
    })
}

/// The field name in serde's "missing field `x`" message.
fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn through<T: DeserializeOwned + Serialize>(json: &[u8]) -> Result<Vec<u8>> {
    let value: T = parse_json(json, "body")?;
    serde_json::to_vec(&value).map_err(|e| Error::internal(e.to_string()))
}

macro_rules! schema_table {
    ($($name:literal => $ty:ty),+ $(,)?) => {
        /// Every schema name this table knows.
        pub const SCHEMA_NAMES: &[&str] = &[$($name),+];

        /// Parses `json` as the named schema and serialises it again.
        pub fn roundtrip(schema: &str, json: &[u8]) -> Result<Vec<u8>> {
            match schema {
                $($name => through::<$ty>(json),)+
                other => Err(Error::invalid(format!("unknown schema `{other}`"))),
            }
        }
    };
}

schema_table! {
    "URL" => common::Url,
    "ImageMedia" => common::ImageMedia,
    "BuiltinTool" => common::BuiltinTool,
    "ToolCall" => common::ToolCall,
    "ToolResponse" => common::ToolResponse,
    "ToolParamDefinition" => common::ToolParamDefinition,
    "ToolDefinition" => common::ToolDefinition,
    "ToolChoice" => common::ToolChoice,
    "ToolPromptFormat" => common::ToolPromptFormat,
    "UserMessage" => common::UserMessage,
    "SystemMessage" => common::SystemMessage,
    "ToolResponseMessage" => common::ToolResponseMessage,
    "CompletionMessage" => common::CompletionMessage,
    "StopReason" => common::StopReason,
    "TokenLogProbs" => common::TokenLogProbs,
    "SamplingParams" => common::SamplingParams,
    "SamplingStrategy" => common::SamplingStrategy,
    "ChatCompletionRequest" => inference::ChatCompletionRequest,
    "ChatCompletionResponse" => inference::ChatCompletionResponse,
    "ChatCompletionResponseEvent" => inference::ChatCompletionResponseEvent,
    "ChatCompletionResponseEventType" => inference::ChatCompletionResponseEventType,
    "ChatCompletionResponseStreamChunk" => inference::ChatCompletionResponseStreamChunk,
    "CompletionRequest" => inference::CompletionRequest,
    "CompletionResponse" => inference::CompletionResponse,
    "CompletionResponseStreamChunk" => inference::CompletionResponseStreamChunk,
    "ToolCallDelta" => inference::ToolCallDelta,
    "ToolCallParseStatus" => inference::ToolCallParseStatus,
    "EmbeddingsRequest" => inference::EmbeddingsRequest,
    "EmbeddingsResponse" => inference::EmbeddingsResponse,
    "BatchCompletionRequest" => inference::BatchCompletionRequest,
    "BatchCompletionResponse" => inference::BatchCompletionResponse,
    "BatchChatCompletionRequest" => inference::BatchChatCompletionRequest,
    "BatchChatCompletionResponse" => inference::BatchChatCompletionResponse,
    "ModelDefWithProvider" => models::ModelDefWithProvider,
    "RegisterModelRequest" => models::RegisterModelRequest,
    "ShieldDefWithProvider" => shields::ShieldDefWithProvider,
    "RegisterShieldRequest" => shields::RegisterShieldRequest,
    "VectorMemoryBankDef" => memory_banks::VectorMemoryBankDef,
    "KeyValueMemoryBankDef" => memory_banks::KeyValueMemoryBankDef,
    "KeywordMemoryBankDef" => memory_banks::KeywordMemoryBankDef,
    "GraphMemoryBankDef" => memory_banks::GraphMemoryBankDef,
    "RegisterMemoryBankRequest" => memory_banks::RegisterMemoryBankRequest,
    "MemoryBankDocument" => memory::MemoryBankDocument,
    "InsertDocumentsRequest" => memory::InsertDocumentsRequest,
    "QueryDocumentsRequest" => memory::QueryDocumentsRequest,
    "QueryDocumentsResponse" => memory::QueryDocumentsResponse,
    "RunShieldRequest" => safety::RunShieldRequest,
    "RunShieldResponse" => safety::RunShieldResponse,
    "SafetyViolation" => safety::SafetyViolation,
    "ViolationLevel" => safety::ViolationLevel,
    "ProviderInfo" => inspect::ProviderInfo,
    "RouteInfo" => inspect::RouteInfo,
    "HealthInfo" => inspect::HealthInfo,
    "LogEventRequest" => telemetry::LogEventRequest,
    "UnstructuredLogEvent" => telemetry::UnstructuredLogEvent,
    "MetricEvent" => telemetry::MetricEvent,
    "StructuredLogEvent" => telemetry::StructuredLogEvent,
    "SpanStartPayload" => telemetry::SpanStartPayload,
    "SpanEndPayload" => telemetry::SpanEndPayload,
    "SpanStatus" => telemetry::SpanStatus,
    "LogSeverity" => telemetry::LogSeverity,
    "Trace" => telemetry::Trace,
    "AgentConfig" => agents::AgentConfig,
    "CodeInterpreterToolDefinition" => agents::CodeInterpreterToolDefinition,
    "FunctionCallToolDefinition" => agents::FunctionCallToolDefinition,
    "MemoryToolDefinition" => agents::MemoryToolDefinition,
    "PhotogenToolDefinition" => agents::PhotogenToolDefinition,
    "RestAPIExecutionConfig" => agents::RestAPIExecutionConfig,
    "RestAPIMethod" => agents::RestAPIMethod,
    "SearchToolDefinition" => agents::SearchToolDefinition,
    "WolframAlphaToolDefinition" => agents::WolframAlphaToolDefinition,
    "CreateAgentRequest" => agents::CreateAgentRequest,
    "AgentCreateResponse" => agents::AgentCreateResponse,
    "CreateAgentSessionRequest" => agents::CreateAgentSessionRequest,
    "AgentSessionCreateResponse" => agents::AgentSessionCreateResponse,
    "Attachment" => agents::Attachment,
    "CreateAgentTurnRequest" => agents::CreateAgentTurnRequest,
    "AgentTurnResponseEvent" => agents::AgentTurnResponseEvent,
    "AgentTurnResponseStepCompletePayload" => agents::AgentTurnResponseStepCompletePayload,
    "AgentTurnResponseStepProgressPayload" => agents::AgentTurnResponseStepProgressPayload,
    "AgentTurnResponseStepStartPayload" => agents::AgentTurnResponseStepStartPayload,
    "AgentTurnResponseStreamChunk" => agents::AgentTurnResponseStreamChunk,
    "AgentTurnResponseTurnCompletePayload" => agents::AgentTurnResponseTurnCompletePayload,
    "AgentTurnResponseTurnStartPayload" => agents::AgentTurnResponseTurnStartPayload,
    "InferenceStep" => agents::InferenceStep,
    "MemoryRetrievalStep" => agents::MemoryRetrievalStep,
    "ShieldCallStep" => agents::ShieldCallStep,
    "ToolExecutionStep" => agents::ToolExecutionStep,
    "Turn" => agents::Turn,
    "DeleteAgentsRequest" => agents::DeleteAgentsRequest,
    "DeleteAgentsSessionRequest" => agents::DeleteAgentsSessionRequest,
    "GetAgentsSessionRequest" => agents::GetAgentsSessionRequest,
    "Session" => agents::Session,
    "AgentStepResponse" => agents::AgentStepResponse,
    "TrainEvalDataset" => datasets::TrainEvalDataset,
    "TrainEvalDatasetColumnType" => datasets::TrainEvalDatasetColumnType,
    "CreateDatasetRequest" => datasets::CreateDatasetRequest,
    "DeleteDatasetRequest" => datasets::DeleteDatasetRequest,
    "CancelEvaluationJobRequest" => evaluations::CancelEvaluationJobRequest,
    "EvaluateQuestionAnsweringRequest" => evaluations::EvaluateQuestionAnsweringRequest,
    "EvaluationJob" => evaluations::EvaluationJob,
    "EvaluateSummarizationRequest" => evaluations::EvaluateSummarizationRequest,
    "EvaluateTextGenerationRequest" => evaluations::EvaluateTextGenerationRequest,
    "EvaluationJobArtifactsResponse" => evaluations::EvaluationJobArtifactsResponse,
    "EvaluationJobLogStream" => evaluations::EvaluationJobLogStream,
    "EvaluationJobStatusResponse" => evaluations::EvaluationJobStatusResponse,
    "CancelTrainingJobRequest" => post_training::CancelTrainingJobRequest,
    "Checkpoint" => post_training::Checkpoint,
    "PostTrainingJobArtifactsResponse" => post_training::PostTrainingJobArtifactsResponse,
    "PostTrainingJobLogStream" => post_training::PostTrainingJobLogStream,
    "PostTrainingJobStatus" => post_training::PostTrainingJobStatus,
    "PostTrainingJobStatusResponse" => post_training::PostTrainingJobStatusResponse,
    "PostTrainingJob" => post_training::PostTrainingJob,
    "DPOAlignmentConfig" => post_training::DpoAlignmentConfig,
    "OptimizerConfig" => post_training::OptimizerConfig,
    "RLHFAlgorithm" => post_training::RlhfAlgorithm,
    "TrainingConfig" => post_training::TrainingConfig,
    "PreferenceOptimizeRequest" => post_training::PreferenceOptimizeRequest,
    "DoraFinetuningConfig" => post_training::DoraFinetuningConfig,
    "FinetuningAlgorithm" => post_training::FinetuningAlgorithm,
    "LoraFinetuningConfig" => post_training::LoraFinetuningConfig,
    "QLoraFinetuningConfig" => post_training::QLoraFinetuningConfig,
    "SupervisedFineTuneRequest" => post_training::SupervisedFineTuneRequest,
    "DialogGenerations" => reward_scoring::DialogGenerations,
    "RewardScoreRequest" => reward_scoring::RewardScoreRequest,
    "RewardScoringResponse" => reward_scoring::RewardScoringResponse,
    "ScoredDialogGenerations" => reward_scoring::ScoredDialogGenerations,
    "ScoredMessage" => reward_scoring::ScoredMessage,
    "SyntheticDataGenerateRequest" => synthetic_data_generation::SyntheticDataGenerateRequest,
    "SyntheticDataGenerationResponse" => synthetic_data_generation::SyntheticDataGenerationResponse,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn table_covers_exactly_the_contract_schemas() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/spec/llama-stack-spec-v0.0.41.json");
        let spec: serde_json::Value = serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap();
        let in_spec: BTreeSet<&str> =
            spec["components"]["schemas"].as_object().unwrap().keys().map(String::as_str).collect();
        let in_table: BTreeSet<&str> = SCHEMA_NAMES.iter().copied().collect();
        assert_eq!(in_table.len(), SCHEMA_NAMES.len(), "a schema is listed twice");
        assert_eq!(in_spec.difference(&in_table).collect::<Vec<_>>(), Vec::<&&str>::new(), "missing from the table");
        assert_eq!(in_table.difference(&in_spec).collect::<Vec<_>>(), Vec::<&&str>::new(), "not in the contract");
        assert_eq!(in_table.len(), 130);
    }

    #[test]
    fn roundtrip_reads_the_named_schema_and_names_bad_fields() {
        let out = roundtrip("CreateAgentSessionRequest", br#"{"agent_id":"a","session_name":"s","extra":1}"#).unwrap();
        assert_eq!(out, br#"{"agent_id":"a","session_name":"s"}"#);
        let out = roundtrip("PostTrainingJobStatus", br#""scheduled""#).unwrap();
        assert_eq!(out, br#""scheduled""#);
        let out =
            roundtrip("SyntheticDataGenerateRequest", br#"{"dialogs":[{"role":"user","content":"hi"}]}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["filtering_function"], "none");

        let Err(Error::Validation(issues)) = roundtrip(
            "CreateDatasetRequest",
            br#"{"uuid":"u","dataset":{"columns":{"a":"blob"},"content_url":"https://x"}}"#,
        ) else {
            panic!("expected a validation error");
        };
        assert_eq!(issues[0].loc, ["body", "dataset", "columns", "a"]);
        assert!(roundtrip("NoSuchSchema", b"{}").is_err());
    }
}

//! Name → type table over every schema of the wire contract, so a JSON document can be read
//! into its Rust type and written back (used by the schema round-trip tests and the bindings).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{common, inference, inspect, memory, memory_banks, models, safety, shields, telemetry};
use crate::error::{Error, FieldIssue, Result};

/// Reads `json` as `T`, reporting the path of the first mismatch.
pub fn parse_json<T: DeserializeOwned>(json: &[u8], root: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut loc = vec![root.to_owned()];
        loc.extend(e.path().to_string().split('.').filter(|s| !s.is_empty() && *s != "?").map(str::to_owned));
        Error::Validation(vec![FieldIssue { loc, msg: e.inner().to_string(), kind: "value_error".into() }])
    })
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
}

//! `llama_stack.apis.inference`: requests, responses and stream events.

use serde::{Deserialize, Serialize};

use super::common::{
    CompletionMessage, InterleavedTextMedia, Message, SamplingParams, StopReason, TokenLogProbs, ToolCall, ToolChoice,
    ToolDefinition, ToolPromptFormat,
};
use super::macros::string_enum;

string_enum!(ChatCompletionResponseEventType { Start = "start", Complete = "complete", Progress = "progress" });
string_enum!(ToolCallParseStatus {
    Started = "started",
    InProgress = "in_progress",
    Failure = "failure",
    Success = "success",
});
string_enum!(QuantizationType { Bf16 = "bf16", Fp8 = "fp8" });

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogProbConfig {
    #[serde(default = "zero")]
    pub top_k: Option<i64>,
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn zero() -> Option<i64> {
    Some(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default = "default_sampling")]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub tools: Vec<ToolDefinition>,
    #[serde(default = "default_tool_choice")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default = "default_tool_prompt_format")]
    pub tool_prompt_format: Option<ToolPromptFormat>,
    #[serde(default = "default_false")]
    pub stream: Option<bool>,
    #[serde(default)]
    pub logprobs: Option<LogProbConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub content: InterleavedTextMedia,
    #[serde(default = "default_sampling")]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default = "default_false")]
    pub stream: Option<bool>,
    #[serde(default)]
    pub logprobs: Option<LogProbConfig>,
}

impl ChatCompletionRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
    pub fn sampling(&self) -> SamplingParams {
        self.sampling_params.clone().unwrap_or_default()
    }
}

impl CompletionRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
    pub fn sampling(&self) -> SamplingParams {
        self.sampling_params.clone().unwrap_or_default()
    }
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_sampling() -> Option<SamplingParams> {
    Some(SamplingParams::default())
}
#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_tool_choice() -> Option<ToolChoice> {
    Some(ToolChoice::Auto)
}
#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_tool_prompt_format() -> Option<ToolPromptFormat> {
    Some(ToolPromptFormat::Json)
}
#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_false() -> Option<bool> {
    Some(false)
}

/// `tools: Optional[List[...]] = []` upstream: an explicit null means the default.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    pub completion_message: CompletionMessage,
    #[serde(default)]
    pub logprobs: Option<Vec<TokenLogProbs>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    pub completion_message: CompletionMessage,
    #[serde(default)]
    pub logprobs: Option<Vec<TokenLogProbs>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponseStreamChunk {
    pub delta: String,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub logprobs: Option<Vec<TokenLogProbs>>,
}

/// `ToolCallDelta.content`: text of a call being streamed, or the parsed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolCallDeltaContent {
    Call(ToolCall),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub content: ToolCallDeltaContent,
    pub parse_status: ToolCallParseStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventDelta {
    Text(String),
    ToolCall(ToolCallDelta),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponseEvent {
    pub event_type: ChatCompletionResponseEventType,
    pub delta: EventDelta,
    #[serde(default)]
    pub logprobs: Option<Vec<TokenLogProbs>>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponseStreamChunk {
    pub event: ChatCompletionResponseEvent,
}

impl ChatCompletionResponseStreamChunk {
    pub fn new(
        event_type: ChatCompletionResponseEventType,
        delta: EventDelta,
        stop_reason: Option<StopReason>,
    ) -> Self {
        Self { event: ChatCompletionResponseEvent { event_type, delta, logprobs: None, stop_reason } }
    }

    pub fn text(event_type: ChatCompletionResponseEventType, text: impl Into<String>) -> Self {
        Self::new(event_type, EventDelta::Text(text.into()), None)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub contents: Vec<InterleavedTextMedia>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    pub embeddings: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCompletionRequest {
    pub model: String,
    pub content_batch: Vec<InterleavedTextMedia>,
    #[serde(default = "default_sampling")]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default)]
    pub logprobs: Option<LogProbConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCompletionResponse {
    pub completion_message_batch: Vec<CompletionMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchChatCompletionRequest {
    pub model: String,
    pub messages_batch: Vec<Vec<Message>>,
    #[serde(default = "default_sampling")]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub tools: Vec<ToolDefinition>,
    #[serde(default = "default_tool_choice")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default = "default_tool_prompt_format")]
    pub tool_prompt_format: Option<ToolPromptFormat>,
    #[serde(default)]
    pub logprobs: Option<LogProbConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchChatCompletionResponse {
    pub completion_message_batch: Vec<CompletionMessage>,
}

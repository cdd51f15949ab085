//! The parts of OpenAI-compatible answers we read. Every field has a default where servers
//! differ, so vLLM, llama.cpp, LM Studio and `OpenAI` itself all decode.

use serde::Deserialize;
use serde_json::Value;

use crate::providers::inference::http_util::WireToolCall;

/// `GET /models`.
#[derive(Debug, Deserialize)]
pub(super) struct ModelList {
    #[serde(default)]
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ModelEntry {
    pub id: String,
}

/// `POST /chat/completions` without streaming.
#[derive(Debug, Deserialize)]
pub(super) struct ChatAnswer {
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChatChoice {
    #[serde(default)]
    pub message: Option<AnswerMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// `{content: [{token, logprob, top_logprobs}]}` when logprobs were asked for.
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

/// One event of a streamed `/chat/completions`.
#[derive(Debug, Deserialize)]
pub(super) struct ChatStreamChunk {
    #[serde(default)]
    pub choices: Vec<StreamChoice>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StreamChoice {
    #[serde(default)]
    pub delta: Option<Delta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<DeltaToolCall>>,
}

/// A piece of a tool call: the first piece of a call names it, later ones add to its arguments.
#[derive(Debug, Deserialize)]
pub(super) struct DeltaToolCall {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<DeltaFunction>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DeltaFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<Value>,
}

/// `POST /completions`, whole or one streamed event.
#[derive(Debug, Deserialize)]
pub(super) struct CompletionAnswer {
    #[serde(default)]
    pub choices: Vec<CompletionChoice>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CompletionChoice {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// `{tokens, token_logprobs, top_logprobs}` when logprobs were asked for.
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// `POST /embeddings`.
#[derive(Debug, Deserialize)]
pub(super) struct EmbeddingAnswer {
    pub data: Vec<EmbeddingItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct EmbeddingItem {
    #[serde(default)]
    pub index: Option<usize>,
    pub embedding: Vec<f64>,
}

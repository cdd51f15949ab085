//! The parts of Bedrock Runtime's answers we read: the Converse answer, the `ConverseStream`
//! events, and the native Llama answer of `InvokeModel` (whole, or one streamed chunk). Unknown
//! fields, such as the `p` padding Bedrock adds to stream events, are ignored.

use serde::Deserialize;
use serde_json::Value;

/// `POST /model/{modelId}/converse`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseAnswer {
    #[serde(default)]
    pub output: Option<ConverseOutput>,
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConverseOutput {
    #[serde(default)]
    pub message: Option<AnswerMessage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerMessage {
    #[serde(default)]
    pub content: Vec<ContentBlock>,
}

/// One block of an answer: text or a tool call (other kinds are skipped).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentBlock {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_use: Option<ToolUse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUse {
    #[serde(default, rename = "toolUseId")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub input: Value,
}

/// `contentBlockStart`: a tool call begins (text blocks start without one).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentBlockStart {
    #[serde(default)]
    pub content_block_index: u64,
    #[serde(default)]
    pub start: Option<BlockStart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStart {
    #[serde(default)]
    pub tool_use: Option<ToolUseStart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUseStart {
    #[serde(default, rename = "toolUseId")]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// `contentBlockDelta`: more text, or more of a tool call's JSON input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentBlockDelta {
    #[serde(default)]
    pub content_block_index: u64,
    #[serde(default)]
    pub delta: Option<BlockDelta>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockDelta {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_use: Option<ToolUseDelta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolUseDelta {
    /// A piece of JSON text; the pieces of one block put together are the call's input.
    #[serde(default)]
    pub input: String,
}

/// `messageStop`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageStop {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// Meta Llama's native answer to `invoke`, and the decoded body of each streamed `chunk`
/// (where `generation` is the new text and `stop_reason` is null until the last one).
#[derive(Debug, Deserialize)]
pub(super) struct LlamaGeneration {
    #[serde(default)]
    pub generation: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// A `chunk` event of `invoke-with-response-stream`: base64 of the model's JSON.
#[derive(Debug, Deserialize)]
pub(super) struct PayloadPart {
    pub bytes: String,
}

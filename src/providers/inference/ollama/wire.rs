//! The parts of Ollama's answers we read. Every field has a default, so a newer or older server
//! that adds or drops a field still decodes.

use serde::Deserialize;

use crate::providers::inference::http_util::WireToolCall;

/// `GET /api/tags`.
#[derive(Debug, Deserialize)]
pub(super) struct TagList {
    #[serde(default)]
    pub models: Vec<TagEntry>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TagEntry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

impl TagEntry {
    pub(super) fn tag(&self) -> Option<&str> {
        self.model.as_deref().or(self.name.as_deref()).filter(|t| !t.is_empty())
    }
}

/// One `/api/chat` answer, or one line of its stream.
#[derive(Debug, Deserialize)]
pub(super) struct ChatChunk {
    #[serde(default)]
    pub message: Option<ChatMessage>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub done_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChatMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

/// One `/api/generate` answer, or one line of its stream.
#[derive(Debug, Deserialize)]
pub(super) struct GenerateChunk {
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub done_reason: Option<String>,
}

/// `POST /api/embed`.
#[derive(Debug, Deserialize)]
pub(super) struct EmbedAnswer {
    pub embeddings: Vec<Vec<f64>>,
}

//! `llama_stack.apis.memory`: documents, chunks and queries.

use serde::{Deserialize, Serialize};

use super::common::{InterleavedTextMedia, JsonObject, Url};

/// `MemoryBankDocument.content`: `InterleavedTextMedia | URL`. A URL object is kept as a URL; a
/// bare string stays text (as in upstream, where pydantic tries the text form first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DocumentContent {
    Media(InterleavedTextMedia),
    Url(Url),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryBankDocument {
    pub document_id: String,
    pub content: DocumentContent,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub metadata: JsonObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub content: InterleavedTextMedia,
    pub token_count: i64,
    pub document_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDocumentsResponse {
    pub chunks: Vec<Chunk>,
    pub scores: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsertDocumentsRequest {
    pub bank_id: String,
    pub documents: Vec<MemoryBankDocument>,
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDocumentsRequest {
    pub bank_id: String,
    pub query: InterleavedTextMedia,
    #[serde(default)]
    pub params: Option<JsonObject>,
}

//! The `meta-reference` memory provider's config. Upstream's has no fields; every field here
//! has a default, so an upstream run config (`config: {}`) loads unchanged.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kvstore::KvStoreConfig;
use crate::types::common::JsonObject;

fn default_max_document_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_fetch_timeout() -> f64 {
    30.0
}

fn default_exact_search_limit() -> usize {
    20_000
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetaReferenceMemoryConfig {
    /// Where banks, documents, chunks and vectors are kept; `None`: the stack's `metadata_store`.
    #[serde(default)]
    pub kvstore: Option<KvStoreConfig>,
    /// Lets documents be fetched from private, loopback and link-local addresses.
    #[serde(default)]
    pub allow_private_urls: bool,
    /// Largest document, in bytes, as fetched or decoded.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: u64,
    /// Time limit for fetching one URL, in seconds (connect, redirects and body together).
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_seconds: f64,
    /// Path of a Llama 3 `tokenizer.model`; `None`: the one in the installed `llama_models`.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Vector banks with more chunks than this are searched with an approximate index.
    #[serde(default = "default_exact_search_limit")]
    pub exact_search_limit: usize,
}

impl MetaReferenceMemoryConfig {
    pub fn parse(config: &JsonObject) -> Result<Self> {
        let mut cleaned = config.clone();
        // Fields left null take their defaults.
        cleaned.retain(|_, v| !v.is_null());
        let c: Self = serde_json::from_value(serde_json::Value::Object(cleaned))
            .map_err(|e| Error::config(format!("memory provider `meta-reference`: {e}")))?;
        if !(c.fetch_timeout_seconds.is_finite() && c.fetch_timeout_seconds > 0.0) {
            return Err(Error::config("memory provider `meta-reference`: `fetch_timeout_seconds` must be positive"));
        }
        if c.max_document_bytes == 0 {
            return Err(Error::config("memory provider `meta-reference`: `max_document_bytes` must be positive"));
        }
        Ok(c)
    }
}

//! The `remote::chromadb` memory provider: vector banks kept in a Chroma server, spoken to over
//! Chroma's HTTP API v2 (`/api/v2/tenants/<tenant>/databases/<database>/collections/...`, the API
//! of the 1.x servers; upstream's client spoke the older v1 API).
//!
//! As upstream: one collection per bank, named after the bank (a bank id Chroma does not take as
//! a name, e.g. with spaces or slashes, gets `lsrs_<sanitised id>_<hash>`), the bank definition
//! as JSON in the collection's `bank` metadata (so banks are listed from the server, and every
//! process on it serves them), and each chunk's record text upstream's chunk JSON. New
//! collections measure cosine distance; scores are cosine similarity whatever the collection's
//! space (`l2` and `ip` distances are converted, vectors being normalised). Records carry
//! `document_id` and `generation` metadata for replacing and deleting documents
//! (see [`super::remote`]).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::provider::{Preparer, stored_bank_definition, vector_bank};
use super::remote::{self, Api, ChunkRecord, ChunkStore};
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::providers::inference::client::Service;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::BuildArgs;
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::MemoryBankDef;

static CHROMA: Service = Service::new("Chroma", "", "")
    .with_hints(" (start one with `chroma run --host <host> --port <port> --path <dir>`)", "");

/// Collections listed per request.
const PAGE: usize = 100;
/// Records per `add` when the server does not say (`/api/v2/pre-flight-checks`).
const DEFAULT_BATCH: usize = 1000;

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_tenant() -> String {
    "default_tenant".to_owned()
}

fn default_database() -> String {
    "default_database".to_owned()
}

/// Upstream's `RemoteProviderConfig` (`host`, `port`); the rest are this project's, with defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct ChromaConfig {
    #[serde(default = "default_host")]
    pub host: String,
    pub port: u16,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    pub allow_private_urls: bool,
    #[serde(default)]
    pub tokenizer: Option<String>,
}

pub struct ChromaMemory {
    provider_id: String,
    api: Api,
    /// `http://host:port`
    base: String,
    /// `/api/v2/tenants/<tenant>/databases/<database>/collections`
    collections: String,
    prep: Preparer,
    batch: usize,
}

/// The collection name of a bank: the id itself when Chroma takes it (3-512 characters of
/// `[a-zA-Z0-9._-]`, alphanumeric at both ends, no `..`), else `lsrs_<sanitised>_<hash>`.
pub fn collection_name(bank_id: &str) -> String {
    let ok_chars = bank_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let ends = bank_id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && bank_id.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    let is_ipv4 = bank_id.parse::<std::net::Ipv4Addr>().is_ok();
    if (3..=512).contains(&bank_id.len()) && ok_chars && ends && !bank_id.contains("..") && !is_ipv4 {
        return bank_id.to_owned();
    }
    let clean: String = bank_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(40)
        .collect();
    let mut hash = String::new();
    for b in Sha256::digest(bank_id.as_bytes()).iter().take(8) {
        let _ = write!(hash, "{b:02x}");
    }
    format!("lsrs_{clean}_{hash}")
}

/// How a collection's distance becomes cosine similarity (vectors are unit length).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Space {
    Cosine,
    L2,
    Ip,
}

impl Space {
    fn of(collection: &Value) -> Self {
        let space = collection
            .pointer("/configuration_json/hnsw/space")
            .or_else(|| collection.pointer("/configuration_json/spann/space"))
            .or_else(|| collection.pointer("/metadata/hnsw:space"))
            .and_then(Value::as_str);
        match space {
            Some("cosine") => Self::Cosine,
            Some("ip") => Self::Ip,
            // Chroma's default space.
            _ => Self::L2,
        }
    }

    fn similarity(self, distance: f64) -> f64 {
        match self {
            Self::Cosine | Self::Ip => 1.0 - distance,
            // Squared L2 between unit vectors is 2 - 2cos.
            Self::L2 => 1.0 - distance / 2.0,
        }
    }
}

/// One bank's collection.
struct Collection<'a> {
    chroma: &'a ChromaMemory,
    id: String,
    space: Space,
}

impl Collection<'_> {
    fn path(&self, op: &str) -> String {
        format!("{}/{}/{op}", self.chroma.collections, self.id)
    }

    async fn post(&self, op: &str, body: &Value) -> Result<Value> {
        self.chroma.api.expect(Method::POST, &self.chroma.base, &self.path(op), Some(body), None).await
    }

    fn bad(&self, op: &str, detail: impl std::fmt::Display) -> Error {
        self.chroma.api.bad_answer(&self.chroma.base, &self.path(op), detail)
    }
}

#[async_trait]
impl ChunkStore for Collection<'_> {
    fn batch_size(&self) -> usize {
        self.chroma.batch
    }

    async fn add(&self, generation: &str, records: &[ChunkRecord]) -> Result<()> {
        let body = json!({
            "ids": records.iter().map(|r| format!("{}:chunk-{}:{generation}", r.document_id, r.index)).collect::<Vec<_>>(),
            "embeddings": records.iter().map(|r| &r.vector).collect::<Vec<_>>(),
            "documents": records.iter().map(|r| &r.text).collect::<Vec<_>>(),
            "metadatas": records
                .iter()
                .map(|r| json!({"document_id": r.document_id, "chunk_index": r.index, "generation": generation}))
                .collect::<Vec<_>>(),
        });
        self.post("add", &body).await.map(drop)
    }

    async fn remove_documents(&self, document_ids: &[String], keep: Option<&str>) -> Result<()> {
        let docs = json!({"document_id": {"$in": document_ids}});
        let filter = match keep {
            Some(g) => json!({"$and": [docs, {"generation": {"$ne": g}}]}),
            None => docs,
        };
        self.post("delete", &json!({"where": filter})).await.map(drop)
    }

    async fn remove_generation(&self, generation: &str) -> Result<()> {
        self.post("delete", &json!({"where": {"generation": generation}})).await.map(drop)
    }

    async fn existing(&self, document_ids: &[String]) -> Result<HashSet<String>> {
        let body = json!({
            "where": {"$and": [{"document_id": {"$in": document_ids}}, {"chunk_index": 0}]},
            "include": ["metadatas"],
        });
        let answer = self.post("get", &body).await?;
        let metas =
            answer.get("metadatas").and_then(Value::as_array).ok_or_else(|| self.bad("get", "no `metadatas`"))?;
        Ok(metas.iter().filter_map(|m| m.get("document_id").and_then(Value::as_str)).map(str::to_owned).collect())
    }

    async fn nearest(&self, vector: &[f32], k: usize) -> Result<Vec<(String, f64)>> {
        let body = json!({"query_embeddings": [vector], "n_results": k, "include": ["documents", "distances"]});
        let answer = self.post("query", &body).await?;
        let first = |key: &str| answer.get(key).and_then(|v| v.get(0)).and_then(Value::as_array);
        let (Some(docs), Some(dists)) = (first("documents"), first("distances")) else {
            return Err(self.bad("query", "no `documents` or `distances`"));
        };
        Ok(docs
            .iter()
            .zip(dists)
            .filter_map(|(d, dist)| Some((d.as_str()?.to_owned(), self.space.similarity(dist.as_f64()?))))
            .collect())
    }
}

/// An insert into a bank whose collection is not there (dropped by another process, or deleted
/// behind the stack's back): registering it again makes a new one.
fn gone(bank: &MemoryBankDef) -> Error {
    Error::invalid(format!(
        "memory bank `{}` has no collection in Chroma (it was dropped or deleted); register it again",
        bank.identifier()
    ))
}

impl ChromaMemory {
    pub async fn build(args: BuildArgs) -> Result<Arc<Self>> {
        let mut cleaned = args.config.clone();
        cleaned.retain(|_, v| !v.is_null());
        let config: ChromaConfig = serde_json::from_value(Value::Object(cleaned))
            .map_err(|e| Error::config(format!("memory provider `{}` (remote::chromadb): {e}", args.provider_id)))?;
        let host = if config.host.contains(':') && !config.host.starts_with('[') {
            format!("[{}]", config.host)
        } else {
            config.host.clone()
        };
        let base = format!("http://{host}:{}", config.port);
        reqwest::Url::parse(&base).map_err(|e| {
            Error::config(format!("memory provider `{}` (remote::chromadb): `host`: {e}", args.provider_id))
        })?;
        let seg = |s: &str| s.replace('%', "%25").replace('/', "%2F").replace('?', "%3F").replace('#', "%23");
        let api = Api::new(&args.provider_id, &CHROMA)?;
        let prep =
            Preparer::remote(config.allow_private_urls, config.tokenizer.clone(), args.deps.models.clone()).await?;
        let mut me = Self {
            collections: format!(
                "/api/v2/tenants/{}/databases/{}/collections",
                seg(&config.tenant),
                seg(&config.database)
            ),
            provider_id: args.provider_id,
            api,
            base,
            prep,
            batch: DEFAULT_BATCH,
        };
        // A server that is down at start is not fatal: banks are listed again later, and calls
        // name the server. Its batch limit is read when it answers.
        match me.api.call(Method::GET, &me.base, "/api/v2/pre-flight-checks", None, None).await {
            Ok(Ok(v)) => {
                if let Some(n) = v.get("max_batch_size").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()) {
                    me.batch = n.clamp(1, DEFAULT_BATCH);
                }
            }
            Ok(Err(r)) => tracing::warn!("Chroma at {}: pre-flight checks answered {}", me.base, r.status),
            Err(e) => tracing::warn!("memory provider `{}`: {e}", me.provider_id),
        }
        Ok(Arc::new(me))
    }

    /// The bank's collection, `None` when the server has none.
    async fn collection(&self, bank_id: &str) -> Result<Option<(Value, Collection<'_>)>> {
        let path = format!("{}/{}", self.collections, collection_name(bank_id));
        match self.api.call(Method::GET, &self.base, &path, None, None).await? {
            Ok(c) => {
                let id = c
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.api.bad_answer(&self.base, &path, "no `id`"))?;
                let handle = Collection { chroma: self, id: id.to_owned(), space: Space::of(&c) };
                Ok(Some((c, handle)))
            }
            Err(r) if r.status == StatusCode::NOT_FOUND => Ok(None),
            Err(r) => Err(self.api.refused(&self.base, &path, &r)),
        }
    }

    /// The bank's collection, created (cosine space, the bank in its metadata) when missing.
    async fn collection_or_create(&self, bank: &MemoryBankDef) -> Result<Collection<'_>> {
        let definition = serde_json::to_string(bank).map_err(|e| Error::internal(e.to_string()))?;
        let body = json!({
            "name": collection_name(bank.identifier()),
            "metadata": {"bank": definition},
            "configuration": {"hnsw": {"space": "cosine"}},
            "get_or_create": true,
        });
        let c = self.api.expect(Method::POST, &self.base, &self.collections, Some(&body), None).await?;
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.api.bad_answer(&self.base, &self.collections, "no `id`"))?;
        Ok(Collection { chroma: self, id: id.to_owned(), space: Space::of(&c) })
    }

    fn stored_bank(&self, collection: &Value) -> Option<MemoryBankDef> {
        let text = collection.pointer("/metadata/bank")?.as_str()?;
        let name = collection.get("name").and_then(Value::as_str).unwrap_or_default();
        stored_bank_definition(text, &self.provider_id, &format!("Chroma collection `{name}`"))
    }
}

#[async_trait]
impl MemoryProvider for ChromaMemory {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>> {
        let mut out = Vec::new();
        for page in 0.. {
            let path = format!("{}?limit={PAGE}&offset={}", self.collections, page * PAGE);
            let answer = self.api.expect(Method::GET, &self.base, &path, None, None).await?;
            let list = answer.as_array().ok_or_else(|| self.api.bad_answer(&self.base, &path, "not a list"))?;
            out.extend(list.iter().filter_map(|c| self.stored_bank(c)));
            if list.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }

    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()> {
        let model = vector_bank(bank, "chromadb")?;
        self.prep.embedders.check(model).await?;
        let definition = serde_json::to_string(bank).map_err(|e| Error::internal(e.to_string()))?;
        let Some((existing, handle)) = self.collection(bank.identifier()).await? else {
            self.collection_or_create(bank).await?;
            return Ok(());
        };
        if let Some(old) = self.stored_bank(&existing) {
            if old.identifier() != bank.identifier() || vector_bank(&old, "chromadb").ok() != Some(model) {
                return Err(Error::invalid(format!(
                    "memory bank `{}` already exists in Chroma with another embedding model (or as another bank); \
                     its documents depend on it, so register it under another identifier",
                    bank.identifier()
                )));
            }
        }
        // Keep the definition current (e.g. a new chunk size for later inserts).
        let path = format!("{}/{}", self.collections, handle.id);
        let mut metadata = existing.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
        metadata.insert("bank".into(), Value::String(definition));
        self.api.expect(Method::PUT, &self.base, &path, Some(&json!({"new_metadata": metadata})), None).await?;
        Ok(())
    }

    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        _ttl_seconds: Option<i64>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "chromadb")?;
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        let Some((_, collection)) = self.collection(bank.identifier()).await? else {
            return Err(gone(bank));
        };
        remote::write_documents(&collection, &prepared).await
    }

    async fn update_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "chromadb")?;
        let found = self.collection(bank.identifier()).await?;
        remote::update(found.as_ref().map(|(_, c)| c as &dyn ChunkStore), &self.prep, bank, documents, ctx).await
    }

    async fn delete_documents(
        &self,
        bank: &MemoryBankDef,
        document_ids: Vec<String>,
        _ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "chromadb")?;
        if document_ids.is_empty() {
            return Ok(());
        }
        match self.collection(bank.identifier()).await? {
            Some((_, c)) => c.remove_documents(&document_ids, None).await,
            None => Ok(()),
        }
    }

    async fn drop_memory_bank(&self, bank: &MemoryBankDef, _ctx: &RequestContext) -> Result<()> {
        let path = format!("{}/{}", self.collections, collection_name(bank.identifier()));
        match self.api.call(Method::DELETE, &self.base, &path, None, None).await? {
            Ok(_) => Ok(()),
            Err(r) if r.status == StatusCode::NOT_FOUND => Ok(()),
            Err(r) => Err(self.api.refused(&self.base, &path, &r)),
        }
    }

    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse> {
        let model = vector_bank(bank, "chromadb")?;
        let found = self.collection(bank.identifier()).await?;
        let store = found.as_ref().map(|(_, c)| c as &dyn ChunkStore);
        remote::query(store, &self.prep, model, &query, params.as_ref(), ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_ids_chroma_refuses_get_a_safe_unique_name() {
        assert_eq!(collection_name("notes"), "notes");
        assert_eq!(collection_name("my-bank.v2"), "my-bank.v2");
        for bad in ["ab", "Docs: Animals/2024", "-x-", "a..b", "10.0.0.1", "", "é-bank"] {
            let n = collection_name(bad);
            assert!(n.starts_with("lsrs_") && n.len() <= 512, "{bad} -> {n}");
        }
        assert_ne!(collection_name("a b"), collection_name("a/b"));
    }

    #[test]
    fn distances_become_cosine_similarity() {
        let c = json!({"configuration_json": {"hnsw": {"space": "cosine"}}});
        assert!((Space::of(&c).similarity(0.25) - 0.75).abs() < 1e-9);
        let l2 = json!({"configuration_json": {"hnsw": null}});
        assert_eq!(Space::of(&l2), Space::L2);
        assert!((Space::L2.similarity(0.5) - 0.75).abs() < 1e-9);
        assert_eq!(Space::of(&json!({"metadata": {"hnsw:space": "ip"}})), Space::Ip);
    }
}

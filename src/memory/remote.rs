//! What the providers that keep chunks in a vector database behind an HTTP API (Chroma,
//! Weaviate) share: the JSON calls and their errors, the chunk records they store, and how an
//! insert, update, delete and query run against a [`ChunkStore`], whatever the database.
//!
//! A record is one chunk: upstream's chunk JSON (`{"content", "token_count", "document_id"}`) as
//! its text, its vector, and two filterable fields, the document id and a *generation* (random,
//! one per write). Writing documents adds the new generation first and only then removes the
//! documents' older generations, so a write that fails part-way is undone by removing what it
//! added, and the bank is as it was (a query running meanwhile may see both versions).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::index::StoredDocument;
use super::provider::{Preparer, QueryParams, query_text};
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::providers::inference::client::{Origin, Service};
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{Chunk, MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::MemoryBankDef;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One chunk as a vector database keeps it.
#[derive(Debug, Clone)]
pub(super) struct ChunkRecord {
    pub document_id: String,
    pub index: usize,
    /// Upstream's chunk JSON, the record's text.
    pub text: String,
    pub vector: Vec<f32>,
}

/// A bank's chunks in some vector database.
#[async_trait]
pub(super) trait ChunkStore: Send + Sync {
    /// How many records one `add` call may carry.
    fn batch_size(&self) -> usize;
    /// Stores records under `generation`; one call is at most `batch_size` records.
    async fn add(&self, generation: &str, records: &[ChunkRecord]) -> Result<()>;
    /// Removes every record of these documents, except those of generation `keep`.
    async fn remove_documents(&self, document_ids: &[String], keep: Option<&str>) -> Result<()>;
    /// Removes every record of `generation`.
    async fn remove_generation(&self, generation: &str) -> Result<()>;
    /// Which of these documents have records.
    async fn existing(&self, document_ids: &[String]) -> Result<HashSet<String>>;
    /// The `k` records nearest `vector`: their text and cosine similarity (higher is better).
    async fn nearest(&self, vector: &[f32], k: usize) -> Result<Vec<(String, f64)>>;
}

/// A fresh write generation: 128 random bits, as hex.
pub(super) fn new_generation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The records of prepared documents, each chunk with its slice of the vectors.
pub(super) fn records(docs: &[StoredDocument]) -> Result<Vec<ChunkRecord>> {
    let mut out = Vec::new();
    for d in docs {
        let per = d.vectors.len() / d.chunks.len().max(1);
        for (i, c) in d.chunks.iter().enumerate() {
            let chunk = Chunk {
                content: InterleavedTextMedia::Text(c.content.clone()),
                token_count: i64::try_from(c.token_count).unwrap_or(i64::MAX),
                document_id: d.document_id.clone(),
            };
            let text = serde_json::to_string(&chunk).map_err(|e| Error::internal(e.to_string()))?;
            let vector = d.vectors.get(i * per..(i + 1) * per).unwrap_or_default().to_vec();
            out.push(ChunkRecord { document_id: d.document_id.clone(), index: i, text, vector });
        }
    }
    Ok(out)
}

/// Replaces these documents: the new generation is added, then older ones removed. If any step
/// fails, what was added is removed again and the error returned.
pub(super) async fn write_documents(store: &dyn ChunkStore, docs: &[StoredDocument]) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let generation = new_generation();
    let all = records(docs)?;
    let ids: Vec<String> = docs.iter().map(|d| d.document_id.clone()).collect();
    let mut result = Ok(());
    for batch in all.chunks(store.batch_size().max(1)) {
        result = store.add(&generation, batch).await;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = store.remove_documents(&ids, Some(&generation)).await;
    }
    if let Err(e) = result {
        if let Err(undo) = store.remove_generation(&generation).await {
            tracing::error!("memory: could not remove the chunks of a failed insert (generation {generation}): {undo}");
        }
        return Err(e);
    }
    Ok(())
}

/// Reads, chunks and embeds `documents`, then replaces them in the store.
pub(super) async fn insert(
    store: &dyn ChunkStore,
    prep: &Preparer,
    bank: &MemoryBankDef,
    documents: Vec<MemoryBankDocument>,
    ctx: &RequestContext,
) -> Result<()> {
    let prepared = prep.prepare(bank, documents, ctx).await?;
    write_documents(store, &prepared).await
}

/// As [`insert`], for documents the bank must already hold; one it does not is a 400 naming it,
/// and nothing changes.
/// `store` is `None` when the bank has no storage yet (so it holds no document).
pub(super) async fn update(
    store: Option<&dyn ChunkStore>,
    prep: &Preparer,
    bank: &MemoryBankDef,
    documents: Vec<MemoryBankDocument>,
    ctx: &RequestContext,
) -> Result<()> {
    let ids: Vec<String> = documents.iter().map(|d| d.document_id.clone()).collect();
    let found = match store {
        Some(s) if !ids.is_empty() => s.existing(&ids).await?,
        _ => HashSet::new(),
    };
    if let Some(missing) = ids.iter().find(|i| !found.contains(*i)) {
        return Err(Error::invalid(format!(
            "document `{missing}` is not in memory bank `{}`; insert it first",
            bank.identifier()
        )));
    }
    match store {
        Some(s) => insert(s, prep, bank, documents, ctx).await,
        None => Ok(()),
    }
}

/// Searches a vector bank: the query's text embedded with the bank's model, the `max_chunks`
/// nearest chunks, those below `score_threshold` left out.
pub(super) async fn query(
    store: Option<&dyn ChunkStore>,
    prep: &Preparer,
    model: &str,
    query: &InterleavedTextMedia,
    params: Option<&JsonObject>,
    ctx: &RequestContext,
) -> Result<QueryDocumentsResponse> {
    let params = QueryParams::parse(params)?;
    let text = query_text(query)?;
    let mut out = QueryDocumentsResponse { chunks: Vec::new(), scores: Vec::new() };
    let Some(store) = store.filter(|_| params.max_chunks > 0) else { return Ok(out) };
    let vector = prep.embedders.embed(model, vec![text], ctx).await?.into_iter().next().unwrap_or_default();
    for (text, score) in store.nearest(&vector, params.max_chunks).await? {
        if params.score_threshold.is_some_and(|t| score < t) {
            continue;
        }
        match serde_json::from_str::<Chunk>(&text) {
            Ok(chunk) => {
                out.chunks.push(chunk);
                out.scores.push(score);
            }
            Err(e) => tracing::warn!("memory: skipping a stored chunk that is not chunk JSON ({e})"),
        }
    }
    Ok(out)
}

/// JSON over HTTP to one kind of vector database, with its errors named after the provider.
pub(super) struct Api {
    http: reqwest::Client,
    provider: Arc<str>,
    service: &'static Service,
}

/// A non-success answer: its status and body (JSON, or the text as a JSON string).
pub(super) struct Refusal {
    pub status: StatusCode,
    pub body: Value,
}

impl Api {
    pub fn new(provider: &str, service: &'static Service) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::config(format!("provider `{provider}`: cannot set up an HTTP client: {e}")))?;
        Ok(Self { http, provider: Arc::from(provider), service })
    }

    fn origin(&self, base: &str) -> Origin {
        Origin { provider: Arc::clone(&self.provider), base_url: Arc::from(base), service: self.service }
    }

    /// One call. A transport failure is an error (503 down, 504 slow); a non-success status is
    /// `Ok(Err(refusal))` for the caller to read, a success its JSON body (null when empty).
    pub async fn call(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<std::result::Result<Value, Refusal>> {
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(key) = bearer.filter(|k| !k.is_empty()) {
            req = req.bearer_auth(key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let origin = self.origin(base);
        let resp = req.send().await.map_err(|e| origin.transport(path, &e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| origin.transport(path, &e))?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() { Ok(Ok(body)) } else { Ok(Err(Refusal { status, body })) }
    }

    /// One call whose non-success status is an error.
    pub async fn expect(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<Value> {
        match self.call(method, base, path, body, bearer).await? {
            Ok(v) => Ok(v),
            Err(r) => Err(self.refused(base, path, &r)),
        }
    }

    /// The error for a refusal, as 4xx/5xx like the other remote providers' errors.
    pub fn refused(&self, base: &str, path: &str, r: &Refusal) -> Error {
        let body = json!({"error": refusal_message(&r.body)});
        self.origin(base).status(path, r.status, body.to_string().as_bytes(), None)
    }

    /// An answer that does not have the documented shape.
    pub fn bad_answer(&self, base: &str, path: &str, detail: impl std::fmt::Display) -> Error {
        self.origin(base).bad_answer(path, detail)
    }
}

/// The message of an error body: Chroma's `{"error": kind, "message"}`, Weaviate's
/// `{"error": [{"message"}]}`, or whatever else came.
fn refusal_message(body: &Value) -> String {
    let error = body.get("error");
    let message = body.get("message").and_then(Value::as_str);
    match (error, message) {
        (Some(Value::String(kind)), Some(m)) => format!("{kind}: {m}"),
        (_, Some(m)) => m.to_owned(),
        (Some(Value::Array(items)), None) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| i.get("message").and_then(Value::as_str).map_or_else(|| i.to_string(), str::to_owned))
                .collect();
            parts.join("; ")
        }
        (Some(Value::String(s)), None) => s.clone(),
        (Some(other), None) => other.to_string(),
        (None, None) => match body {
            Value::Null => "no details".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::memory::StoredChunk;

    /// Records in memory; `fail_add_after` makes the n-th `add` call fail.
    #[derive(Default)]
    struct Mem {
        rows: Mutex<Vec<(String, ChunkRecord)>>,
        adds: Mutex<usize>,
        fail_add_after: Option<usize>,
    }

    #[async_trait]
    impl ChunkStore for Mem {
        fn batch_size(&self) -> usize {
            2
        }
        async fn add(&self, generation: &str, records: &[ChunkRecord]) -> Result<()> {
            let mut n = self.adds.lock().unwrap();
            *n += 1;
            if self.fail_add_after.is_some_and(|f| *n > f) {
                return Err(Error::Storage("disk full".into()));
            }
            self.rows.lock().unwrap().extend(records.iter().map(|r| (generation.to_owned(), r.clone())));
            Ok(())
        }
        async fn remove_documents(&self, ids: &[String], keep: Option<&str>) -> Result<()> {
            self.rows.lock().unwrap().retain(|(g, r)| !ids.contains(&r.document_id) || Some(g.as_str()) == keep);
            Ok(())
        }
        async fn remove_generation(&self, generation: &str) -> Result<()> {
            self.rows.lock().unwrap().retain(|(g, _)| g != generation);
            Ok(())
        }
        async fn existing(&self, ids: &[String]) -> Result<HashSet<String>> {
            let rows = self.rows.lock().unwrap();
            Ok(rows.iter().map(|(_, r)| r.document_id.clone()).filter(|d| ids.contains(d)).collect())
        }
        async fn nearest(&self, _vector: &[f32], _k: usize) -> Result<Vec<(String, f64)>> {
            Ok(Vec::new())
        }
    }

    fn doc(id: &str, chunks: &[&str]) -> StoredDocument {
        StoredDocument {
            document_id: id.into(),
            mime_type: None,
            metadata: JsonObject::new(),
            chunks: chunks.iter().map(|c| StoredChunk { content: (*c).into(), token_count: 1 }).collect(),
            vectors: chunks
                .iter()
                .enumerate()
                .flat_map(|(i, _)| [f32::from(u16::try_from(i).unwrap_or(u16::MAX)), 1.0])
                .collect(),
        }
    }

    fn texts(m: &Mem) -> Vec<String> {
        m.rows.lock().unwrap().iter().map(|(_, r)| r.text.clone()).collect()
    }

    #[test]
    fn error_bodies_of_both_databases_read_well() {
        let chroma = json!({"error": "InvalidArgumentError", "message": "bad name"});
        assert_eq!(refusal_message(&chroma), "InvalidArgumentError: bad name");
        let weaviate = json!({"error": [{"message": "class exists"}, {"message": "again"}]});
        assert_eq!(refusal_message(&weaviate), "class exists; again");
        assert_eq!(refusal_message(&Value::Null), "no details");
    }

    #[tokio::test]
    async fn records_carry_upstream_chunk_json_and_their_vector() {
        let r = records(&[doc("a", &["one", "two"])]).unwrap();
        assert_eq!(r.len(), 2);
        let v: Value = serde_json::from_str(&r[1].text).unwrap();
        assert_eq!(v, serde_json::json!({"content": "two", "token_count": 1, "document_id": "a"}));
        assert_eq!(r[1].vector, vec![1.0, 1.0]);
        assert_eq!(r[1].index, 1);
    }

    #[tokio::test]
    async fn a_write_replaces_documents_and_a_failed_one_changes_nothing() {
        let m = Mem::default();
        write_documents(&m, &[doc("a", &["a1", "a2", "a3"]), doc("b", &["b1"])]).await.unwrap();
        write_documents(&m, &[doc("a", &["new"])]).await.unwrap();
        let mut t = texts(&m);
        t.sort();
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[0].contains("b1") && t[1].contains("new"), "{t:?}");

        // The second batch fails: the first batch's records are taken out again.
        let failing = Mem { fail_add_after: Some(1), ..Mem::default() };
        write_documents(&failing, &[doc("x", &["x1"])]).await.unwrap();
        *failing.adds.lock().unwrap() = 0;
        let before = texts(&failing);
        let err = write_documents(&failing, &[doc("x", &["y1", "y2", "y3"])]).await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(texts(&failing), before);
    }
}

//! The inline `meta-reference` memory provider: banks, documents, chunks and vectors in a kv
//! store, and an index per bank in memory, loaded from the store on the bank's first use.
//!
//! Store layout (under `memory:<provider_id>:`): `bank:<bank id>` → the bank definition;
//! `doc:<bank id>\u{1}<document id>` → the document with its chunks and vectors. One row per
//! document, so a document is always whole.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::RwLock;

use super::chunk::{chunk_text, default_overlap, load_tokenizer};
use super::config::MetaReferenceMemoryConfig;
use super::embedder::Embedders;
use super::fetch::FetchLimits;
use super::index::{BankIndex, Hit, StoredChunk, StoredDocument};
use super::ingest::document_text;
use crate::error::{Error, Result};
use crate::kvstore::KvStore;
use crate::prompt::Llama3Tokenizer;
use crate::providers::RequestContext;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::BuildArgs;
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{Chunk, MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::{MemoryBankDef, MemoryBankDefTagged};

/// `max_chunks` when a query gives none, as upstream.
pub const DEFAULT_MAX_CHUNKS: usize = 3;
/// Chunking of keyword banks, whose definition has no sizes.
const KEYWORD_CHUNK_TOKENS: usize = 512;
/// Documents read (fetched, decoded) at once during one insert.
const READ_CONCURRENCY: usize = 4;

pub struct MetaReferenceMemory {
    provider_id: String,
    store: Arc<dyn KvStore>,
    prefix: String,
    prep: Preparer,
    exact_search_limit: usize,
    banks: tokio::sync::Mutex<HashMap<String, Arc<RwLock<BankIndex>>>>,
}

/// Reads, chunks and embeds documents for a bank; shared by the memory providers, which differ
/// only in where they keep the result.
pub(crate) struct Preparer {
    pub limits: FetchLimits,
    pub tokenizer: Arc<Llama3Tokenizer>,
    pub embedders: Embedders,
}

/// Query parameters this provider honours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryParams {
    pub max_chunks: usize,
    pub score_threshold: Option<f64>,
}

/// The text a query searches for; a query with none is refused, naming the field.
pub(super) fn query_text(query: &InterleavedTextMedia) -> Result<String> {
    let text = query.as_text(" ");
    if text.trim().is_empty() {
        return Err(Error::field(&["body", "query"], "must hold some text", "value_error"));
    }
    Ok(text)
}

impl QueryParams {
    pub fn parse(params: Option<&JsonObject>) -> Result<Self> {
        let mut out = Self { max_chunks: DEFAULT_MAX_CHUNKS, score_threshold: None };
        let Some(p) = params else { return Ok(out) };
        match p.get("max_chunks") {
            None | Some(Value::Null) => {}
            Some(v) => {
                out.max_chunks = v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
                    Error::field(&["body", "params", "max_chunks"], "must be a non-negative integer", "value_error")
                })?;
            }
        }
        match p.get("score_threshold") {
            None | Some(Value::Null) => {}
            Some(v) => {
                out.score_threshold = Some(v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                    Error::field(&["body", "params", "score_threshold"], "must be a number", "value_error")
                })?);
            }
        }
        Ok(out)
    }
}

/// How a bank turns text into chunks and answers queries.
pub(super) enum Kind<'a> {
    Vector { model: &'a str, chunk_size: usize, overlap: usize },
    Keyword,
    KeyValue,
}

pub(super) fn kind(bank: &MemoryBankDef) -> Result<Kind<'_>> {
    match &bank.0 {
        MemoryBankDefTagged::Vector(v) => {
            let size = usize::try_from(v.chunk_size_in_tokens).ok().filter(|s| *s > 0).ok_or_else(|| {
                Error::invalid(format!(
                    "memory bank `{}`: `chunk_size_in_tokens` must be a positive integer, not {}",
                    v.identifier, v.chunk_size_in_tokens
                ))
            })?;
            let overlap = match v.overlap_size_in_tokens {
                None => default_overlap(size),
                Some(o) => usize::try_from(o).ok().filter(|o| *o < size).ok_or_else(|| {
                    Error::invalid(format!(
                        "memory bank `{}`: `overlap_size_in_tokens` must be between 0 and chunk_size_in_tokens - 1, not {o}",
                        v.identifier
                    ))
                })?,
            };
            if v.embedding_model.trim().is_empty() {
                return Err(Error::invalid(format!(
                    "memory bank `{}`: `embedding_model` must not be empty",
                    v.identifier
                )));
            }
            Ok(Kind::Vector { model: &v.embedding_model, chunk_size: size, overlap })
        }
        MemoryBankDefTagged::Keyword(_) => Ok(Kind::Keyword),
        MemoryBankDefTagged::Keyvalue(_) => Ok(Kind::KeyValue),
        MemoryBankDefTagged::Graph(g) => Err(graph_unsupported(&g.identifier)),
    }
}

/// The embedding model of a vector bank; any other type is refused (400), naming the bank and
/// `provider` (e.g. "pgvector"), which stores vector banks only, as upstream's did.
pub(super) fn vector_bank<'a>(bank: &'a MemoryBankDef, provider: &str) -> Result<&'a str> {
    match kind(bank)? {
        Kind::Vector { model, .. } => Ok(model),
        Kind::Keyword | Kind::KeyValue => Err(Error::invalid(format!(
            "memory bank `{}` is a {} bank; the {provider} provider stores vector banks only",
            bank.identifier(),
            bank.bank_type()
        ))),
    }
}

/// A bank definition as stored by a provider, with `provider_id` set to the provider reading it;
/// an unreadable one is logged (`source` says where it was) and skipped.
pub(super) fn stored_bank_definition(text: &str, provider_id: &str, source: &str) -> Option<MemoryBankDef> {
    match serde_json::from_str::<MemoryBankDef>(text) {
        Ok(mut bank) => {
            bank.set_provider_id(provider_id);
            Some(bank)
        }
        Err(e) => {
            tracing::warn!("{source}: ignoring an unreadable bank definition: {e}");
            None
        }
    }
}

/// Refuses to register `bank` again over `old` (its stored definition) with another embedding
/// model: the vectors already stored were made by the old one.
pub(super) fn same_embedding_model(
    old: &MemoryBankDef,
    bank: &MemoryBankDef,
    model: &str,
    provider: &str,
) -> Result<()> {
    if vector_bank(old, provider).ok() == Some(model) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "memory bank `{}` already exists with another embedding model; its documents depend on it, \
         so register it under another identifier",
        bank.identifier()
    )))
}

fn graph_unsupported(id: &str) -> Error {
    Error::not_implemented(format!(
        "memory bank `{id}` is a graph bank: the 0.0.41 API defines the type (no fields, no graph operations), \
         and this provider stores no graphs; use a vector, keyword or keyvalue bank"
    ))
}

/// The parts of a bank definition its stored data depends on; a re-registration must keep them.
fn same_layout(a: &MemoryBankDef, b: &MemoryBankDef) -> bool {
    match (&a.0, &b.0) {
        (MemoryBankDefTagged::Vector(x), MemoryBankDefTagged::Vector(y)) => x.embedding_model == y.embedding_model,
        _ => a.bank_type() == b.bank_type(),
    }
}

impl Preparer {
    /// The preparer of a remote provider: the inline provider's fetch limits, the tokenizer at
    /// `tokenizer` (else the one in `llama_models`), and embeddings through the model table.
    pub async fn remote(
        allow_private_urls: bool,
        tokenizer: Option<String>,
        models: Option<Arc<crate::routing::ModelTable>>,
    ) -> Result<Self> {
        let tokenizer = tokio::task::spawn_blocking(move || load_tokenizer(tokenizer.as_deref()))
            .await
            .map_err(|e| Error::internal(format!("loading the tokenizer failed: {e}")))??;
        Ok(Self {
            limits: FetchLimits {
                allow_private: allow_private_urls,
                max_bytes: 10 * 1024 * 1024,
                timeout: Duration::from_secs(30),
            },
            tokenizer,
            embedders: Embedders::new(models),
        })
    }

    /// Reads, chunks and embeds every document; nothing is stored yet.
    pub async fn prepare(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<Vec<StoredDocument>> {
        let kind = kind(bank)?;
        let mut seen = HashSet::new();
        for d in &documents {
            if !seen.insert(d.document_id.as_str()) {
                return Err(Error::invalid(format!("document `{}` appears twice in one request", d.document_id)));
            }
        }
        let reads: Vec<futures::future::BoxFuture<'static, Result<String>>> = documents
            .iter()
            .map(|d| {
                let (d, limits) = (d.clone(), self.limits.clone());
                async move { document_text(&d, &limits).await }.boxed()
            })
            .collect();
        let texts: Vec<Result<String>> = futures::stream::iter(reads).buffered(READ_CONCURRENCY).collect().await;
        let texts: Vec<String> = texts.into_iter().collect::<Result<_>>()?;
        let (size, overlap) = match kind {
            Kind::Vector { chunk_size, overlap, .. } => (chunk_size, overlap),
            Kind::Keyword => (KEYWORD_CHUNK_TOKENS, default_overlap(KEYWORD_CHUNK_TOKENS)),
            Kind::KeyValue => (0, 0),
        };
        // One blocking call cuts every document of the request.
        let t = Arc::clone(&self.tokenizer);
        let whole = matches!(kind, Kind::KeyValue);
        let all_chunks: Vec<Vec<StoredChunk>> = tokio::task::spawn_blocking(move || {
            texts
                .into_iter()
                .map(|text| {
                    if whole {
                        let count = t.encode(&text, false).len();
                        return vec![StoredChunk { content: text, token_count: count }];
                    }
                    chunk_text(&t, &text, size, overlap)
                        .into_iter()
                        .map(|c| StoredChunk { content: c.content, token_count: c.token_count })
                        .collect()
                })
                .collect()
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        let mut prepared = Vec::with_capacity(documents.len());
        for (doc, chunks) in documents.into_iter().zip(all_chunks) {
            if chunks.is_empty() {
                return Err(Error::invalid(format!("document `{}`: it holds no text", doc.document_id)));
            }
            prepared.push(StoredDocument {
                document_id: doc.document_id,
                mime_type: doc.mime_type,
                metadata: doc.metadata,
                chunks,
                vectors: Vec::new(),
            });
        }
        if let Kind::Vector { model, .. } = kind {
            let texts: Vec<String> = prepared.iter().flat_map(|d| d.chunks.iter().map(|c| c.content.clone())).collect();
            let vectors = self.embedders.embed(model, texts, ctx).await?;
            let mut it = vectors.into_iter();
            for d in &mut prepared {
                for _ in 0..d.chunks.len() {
                    d.vectors.extend(
                        it.next().ok_or_else(|| Error::internal("the embedding model returned too few vectors"))?,
                    );
                }
            }
        }
        Ok(prepared)
    }
}

impl MetaReferenceMemory {
    pub async fn build(args: BuildArgs) -> Result<Arc<Self>> {
        let config = MetaReferenceMemoryConfig::parse(&args.config)?;
        let store = match &config.kvstore {
            Some(cfg) => crate::kvstore::open(cfg)
                .await
                .map_err(|e| Error::config(format!("memory provider `{}`: `kvstore`: {e}", args.provider_id)))?,
            None => args.deps.store.clone(),
        };
        let path = config.tokenizer.clone();
        let tokenizer = tokio::task::spawn_blocking(move || load_tokenizer(path.as_deref()))
            .await
            .map_err(|e| Error::internal(format!("loading the tokenizer failed: {e}")))??;
        Ok(Arc::new(Self {
            prefix: format!("memory:{}:", args.provider_id),
            provider_id: args.provider_id,
            store,
            prep: Preparer {
                limits: FetchLimits {
                    allow_private: config.allow_private_urls,
                    max_bytes: config.max_document_bytes,
                    timeout: Duration::from_secs_f64(config.fetch_timeout_seconds),
                },
                tokenizer,
                embedders: Embedders::new(args.deps.models.clone()),
            },
            exact_search_limit: config.exact_search_limit,
            banks: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    fn bank_key(&self, bank_id: &str) -> String {
        format!("{}bank:{bank_id}", self.prefix)
    }

    fn doc_prefix(&self, bank_id: &str) -> String {
        format!("{}doc:{bank_id}\u{1}", self.prefix)
    }

    fn doc_key(&self, bank_id: &str, doc_id: &str) -> String {
        format!("{}{doc_id}", self.doc_prefix(bank_id))
    }

    /// The bank's index, read from the store on first use in this process.
    async fn index(&self, bank: &MemoryBankDef) -> Result<Arc<RwLock<BankIndex>>> {
        let id = bank.identifier();
        let mut banks = self.banks.lock().await;
        if let Some(ix) = banks.get(id) {
            return Ok(Arc::clone(ix));
        }
        let mut ix = BankIndex::new(matches!(kind(bank)?, Kind::Keyword));
        for (key, value) in self.store.scan_prefix(&self.doc_prefix(id)).await? {
            match serde_json::from_str::<StoredDocument>(&value) {
                Ok(doc) => ix.put(doc),
                Err(e) => tracing::warn!("memory bank `{id}`: ignoring unreadable document row `{key}`: {e}"),
            }
        }
        let ix = Arc::new(RwLock::new(ix));
        banks.insert(id.to_owned(), Arc::clone(&ix));
        Ok(ix)
    }

    /// Writes prepared documents and puts them in the index. If the write fails, the rows are
    /// put back as they were, so the bank is unchanged.
    async fn commit(&self, bank: &MemoryBankDef, docs: Vec<StoredDocument>) -> Result<()> {
        let id = bank.identifier();
        let ix = self.index(bank).await?;
        let mut ix = ix.write().await;
        let mut rows = Vec::with_capacity(docs.len());
        for d in &docs {
            let value = serde_json::to_string(d).map_err(|e| Error::internal(e.to_string()))?;
            rows.push((self.doc_key(id, &d.document_id), value));
        }
        let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
        let previous = self.store.get_many(&keys).await?;
        if let Err(e) = self.store.set_many(&rows).await {
            self.undo(keys.into_iter().zip(previous).collect()).await;
            return Err(e);
        }
        for d in docs {
            ix.put(d);
        }
        Ok(())
    }

    async fn undo(&self, written: Vec<(String, Option<String>)>) {
        for (key, previous) in written.into_iter().rev() {
            let r = match previous {
                Some(v) => self.store.set(&key, &v).await,
                None => self.store.delete(&key).await,
            };
            if let Err(e) = r {
                tracing::error!("memory: could not restore `{key}` after a failed insert: {e}");
            }
        }
    }

    fn chunk_of(ix: &BankIndex, hit: &Hit) -> Option<Chunk> {
        let doc = ix.document(&hit.document_id)?;
        let c = doc.chunks.get(hit.chunk)?;
        Some(Chunk {
            content: InterleavedTextMedia::Text(c.content.clone()),
            token_count: i64::try_from(c.token_count).unwrap_or(i64::MAX),
            document_id: doc.document_id.clone(),
        })
    }
}

#[async_trait]
impl MemoryProvider for MetaReferenceMemory {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>> {
        let rows = self.store.scan_prefix(&format!("{}bank:", self.prefix)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| stored_bank_definition(&v, &self.provider_id, &format!("memory row `{k}`")))
            .collect())
    }

    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()> {
        if let Kind::Vector { model, .. } = kind(bank)? {
            self.prep.embedders.check(model).await?;
        }
        let key = self.bank_key(bank.identifier());
        if let Some(existing) = self.store.get(&key).await? {
            if let Ok(old) = serde_json::from_str::<MemoryBankDef>(&existing) {
                if !same_layout(&old, bank) {
                    return Err(Error::invalid(format!(
                        "memory bank `{}` already exists as a {} bank{}; its documents depend on that, so register it under another identifier",
                        bank.identifier(),
                        old.bank_type(),
                        match &old.0 {
                            MemoryBankDefTagged::Vector(v) => format!(" with embedding model `{}`", v.embedding_model),
                            _ => String::new(),
                        }
                    )));
                }
            }
        }
        let value = serde_json::to_string(bank).map_err(|e| Error::internal(e.to_string()))?;
        self.store.set(&key, &value).await?;
        // A definition that changed only in chunking applies to later inserts.
        self.banks.lock().await.remove(bank.identifier());
        Ok(())
    }

    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        _ttl_seconds: Option<i64>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        self.commit(bank, prepared).await
    }

    async fn update_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<()> {
        kind(bank)?;
        {
            let ix = self.index(bank).await?;
            let ix = ix.read().await;
            if let Some(missing) = documents.iter().find(|d| !ix.contains(&d.document_id)) {
                return Err(Error::invalid(format!(
                    "document `{}` is not in memory bank `{}`; insert it first",
                    missing.document_id,
                    bank.identifier()
                )));
            }
        }
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        self.commit(bank, prepared).await
    }

    async fn delete_documents(
        &self,
        bank: &MemoryBankDef,
        document_ids: Vec<String>,
        _ctx: &RequestContext,
    ) -> Result<()> {
        kind(bank)?;
        let ix = self.index(bank).await?;
        let mut ix = ix.write().await;
        for id in document_ids {
            self.store.delete(&self.doc_key(bank.identifier(), &id)).await?;
            ix.remove(&id);
        }
        Ok(())
    }

    async fn drop_memory_bank(&self, bank: &MemoryBankDef, _ctx: &RequestContext) -> Result<()> {
        let id = bank.identifier();
        let mut banks = self.banks.lock().await;
        for (key, _) in self.store.scan_prefix(&self.doc_prefix(id)).await? {
            self.store.delete(&key).await?;
        }
        self.store.delete(&self.bank_key(id)).await?;
        banks.remove(id);
        Ok(())
    }

    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse> {
        let params = QueryParams::parse(params.as_ref())?;
        let kind = kind(bank)?;
        let text = query_text(&query)?;
        let ix = self.index(bank).await?;
        let hits = match kind {
            Kind::Vector { model, .. } => {
                let q = self.prep.embedders.embed(model, vec![text], ctx).await?.into_iter().next().unwrap_or_default();
                let (hits, wants_ann) = ix.read().await.nearest(&q, params.max_chunks, self.exact_search_limit);
                if wants_ann {
                    start_ann_build(bank.identifier(), &ix).await;
                }
                hits
            }
            Kind::Keyword => ix.read().await.keyword(&text, params.max_chunks),
            Kind::KeyValue => {
                let key = text.trim();
                let ix = ix.read().await;
                let n = ix.document(key).map_or(0, |d| d.chunks.len()).min(params.max_chunks);
                (0..n).map(|i| Hit { document_id: key.to_owned(), chunk: i, score: 1.0 }).collect()
            }
        };
        let ix = ix.read().await;
        let mut out = QueryDocumentsResponse { chunks: Vec::new(), scores: Vec::new() };
        for hit in hits {
            if params.score_threshold.is_some_and(|t| hit.score < t) {
                continue;
            }
            if let Some(chunk) = Self::chunk_of(&ix, &hit) {
                out.chunks.push(chunk);
                out.scores.push(hit.score);
            }
        }
        Ok(out)
    }
}

/// Builds a bank's approximate index in the background (one build per bank at a time) from a
/// snapshot; it is kept only if the bank did not change meanwhile. Queries stay exact until then.
async fn start_ann_build(bank_id: &str, ix: &Arc<RwLock<BankIndex>>) {
    let (snapshot, building) = {
        let guard = ix.read().await;
        if guard.building.swap(true, Ordering::AcqRel) {
            return;
        }
        (guard.snapshot(), Arc::clone(&guard.building))
    };
    let ix = Arc::clone(ix);
    let bank_id = bank_id.to_owned();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let n = snapshot.vectors.len();
        let built = tokio::task::spawn_blocking(move || super::ann::Ann::build(snapshot)).await;
        match built {
            Ok(ann) => {
                let kept = ix.write().await.set_ann(ann);
                tracing::info!(
                    "memory bank `{bank_id}`: approximate index over {n} chunks built in {:.1}s{}",
                    started.elapsed().as_secs_f64(),
                    if kept { "" } else { " (bank changed meanwhile; dropped)" }
                );
            }
            Err(e) => tracing::error!("memory bank `{bank_id}`: building the approximate index failed: {e}"),
        }
        building.store(false, Ordering::Release);
    });
}

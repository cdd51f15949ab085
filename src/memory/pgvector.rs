//! The `remote::pgvector` memory provider: vector banks whose chunks and vectors live in
//! `PostgreSQL` with the pgvector extension, so every server process pointed at one database
//! serves the same banks and documents. Reading, chunking and embedding are the inline
//! provider's ([`Preparer`]); only storage and search differ.
//!
//! Layout: `lsrs_memory_banks` holds every bank definition (keyed by provider id and bank id);
//! each bank's chunks go into a table of their own, `vb_<bank id, sanitised>_<hash>`, created
//! on the bank's first insert once the vector dimension is known, with a `vector(dim)` column and
//! an HNSW index on cosine distance when the server's pgvector has one (0.5.0 and later).
//! Scores are `1 - cosine distance`, higher is better.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;

use super::provider::{Preparer, QueryParams, query_text, same_embedding_model, stored_bank_definition, vector_bank};
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::BuildArgs;
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{Chunk, MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::MemoryBankDef;

const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
const BANKS_TABLE: &str = "lsrs_memory_banks";

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_port() -> u16 {
    5432
}

/// Upstream's `PGVectorConfig` fields; the rest are this project's, with defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct PgVectorConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub db: String,
    pub user: String,
    pub password: String,
    #[serde(default)]
    pub allow_private_urls: bool,
    #[serde(default)]
    pub tokenizer: Option<String>,
}

pub struct PgVectorMemory {
    provider_id: String,
    pool: Pool,
    addr: String,
    prep: Preparer,
    hnsw: bool,
}

/// The chunk table of a bank: a plain identifier of at most 63 bytes, unique per (provider, bank).
pub fn table_name(provider_id: &str, bank_id: &str) -> String {
    let mut clean: String = bank_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(40)
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    let digest = Sha256::digest(format!("{provider_id}\u{1}{bank_id}").as_bytes());
    let mut hash = String::new();
    for b in digest.iter().take(8) {
        let _ = write!(hash, "{b:02x}");
    }
    format!("vb_{clean}_{hash}")
}

/// pgvector's text form of a vector, `[1,2,3]`.
fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x}");
    }
    s.push(']');
    s
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

impl PgVectorMemory {
    pub async fn build(args: BuildArgs) -> Result<Arc<Self>> {
        let mut cleaned = args.config.clone();
        cleaned.retain(|_, v| !v.is_null());
        let config: PgVectorConfig = serde_json::from_value(serde_json::Value::Object(cleaned))
            .map_err(|e| Error::config(format!("memory provider `{}` (remote::pgvector): {e}", args.provider_id)))?;
        let addr = format!("{}:{}/{}", config.host, config.port, config.db);
        let pool = crate::kvstore::postgres::pool(
            &crate::kvstore::postgres::PgAddress {
                host: &config.host,
                port: config.port,
                db: &config.db,
                user: &config.user,
                password: Some(&config.password),
            },
            QUERY_TIMEOUT,
            "pgvector",
        )?;
        let prep =
            Preparer::remote(config.allow_private_urls, config.tokenizer.clone(), args.deps.models.clone()).await?;
        let mut me = Self { provider_id: args.provider_id, pool, addr, prep, hnsw: false };
        me.hnsw = me.setup().await?;
        Ok(Arc::new(me))
    }

    async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Storage(format!("cannot reach PostgreSQL (pgvector) at {}: {e}", self.addr)))
    }

    fn fail(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        if e.code() == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE)
            || e.code() == Some(&SqlState::UNTRANSLATABLE_CHARACTER)
        {
            return Error::invalid(format!("{what}: {}", describe(e)));
        }
        Error::Storage(format!("PostgreSQL (pgvector) at {}: {what}: {}", self.addr, describe(e)))
    }

    async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(QUERY_TIMEOUT, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.fail(what, &e)),
            Err(_) => Err(Error::Storage(format!(
                "PostgreSQL (pgvector) at {}: {what}: no answer within {}s",
                self.addr,
                QUERY_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Creates the extension and the bank table if missing; tells whether HNSW indexes exist.
    async fn setup(&self) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = self.timed("starting a transaction", client.transaction()).await?;
        // One process at a time creates things; a second one starting meanwhile waits here.
        self.timed("locking", tx.execute("SELECT pg_advisory_xact_lock(7355608)", &[])).await?;
        let has = self
            .timed("looking for pgvector", tx.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'", &[]))
            .await?;
        if has.is_empty() {
            tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector").await.map_err(|e| {
                Error::config(format!(
                    "PostgreSQL at {}: the pgvector extension is not installed in this database and cannot be \
                     created by this user ({}); run `CREATE EXTENSION vector` as a superuser",
                    self.addr,
                    describe(&e)
                ))
            })?;
        }
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {BANKS_TABLE} (provider_id TEXT NOT NULL, bank_id TEXT NOT NULL, \
             definition TEXT NOT NULL, chunk_table TEXT NOT NULL, PRIMARY KEY (provider_id, bank_id))"
        );
        self.timed("creating the bank table", tx.batch_execute(&create)).await?;
        let version = self
            .timed(
                "reading pgvector's version",
                tx.query_one("SELECT extversion FROM pg_extension WHERE extname = 'vector'", &[]),
            )
            .await?;
        let version: String = version.try_get(0).map_err(|e| self.fail("reading pgvector's version", &e))?;
        self.timed("committing", tx.commit()).await?;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        Ok((major, minor) >= (0, 5))
    }

    /// The stored definition of `bank_id`, if registered here or by another process.
    async fn stored_bank(&self, client: &Object, bank_id: &str) -> Result<Option<MemoryBankDef>> {
        let sql = format!("SELECT definition FROM {BANKS_TABLE} WHERE provider_id = $1 AND bank_id = $2");
        let rows = self.timed("reading a bank", client.query(&sql, &[&self.provider_id, &bank_id])).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let text: String = row.try_get(0).map_err(|e| self.fail("reading a bank", &e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Storage(format!("memory bank `{bank_id}`: unreadable stored definition: {e}")))
    }

    async fn table_exists(&self, client: &impl deadpool_postgres::GenericClient, table: &str) -> Result<bool> {
        let row =
            self.timed("looking up a table", client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])).await?;
        row.try_get(0).map_err(|e| self.fail("looking up a table", &e))
    }

    /// Replaces the documents in one transaction: all of them are stored, or none.
    async fn write(&self, bank: &MemoryBankDef, docs: Vec<super::StoredDocument>, must_exist: bool) -> Result<()> {
        let id = bank.identifier();
        let table = table_name(&self.provider_id, id);
        let dim = docs.iter().find_map(|d| d.chunks.first().map(|_| d.vectors.len() / d.chunks.len().max(1)));
        let mut client = self.client().await?;
        let tx = self.timed("starting a transaction", client.transaction()).await?;
        // A bank dropped by another process meanwhile gets no new table.
        let sql = format!("SELECT 1 FROM {BANKS_TABLE} WHERE provider_id = $1 AND bank_id = $2 FOR SHARE");
        if self.timed("reading a bank", tx.query(&sql, &[&self.provider_id, &id])).await?.is_empty() {
            return Err(Error::invalid(format!("memory bank `{id}` was dropped; register it again")));
        }
        if let Some(dim) = dim.filter(|d| *d > 0) {
            self.timed("locking the bank", tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&table])).await?;
            if !self.table_exists(&tx, &table).await? {
                let create = format!(
                    "CREATE TABLE {table} (document_id TEXT NOT NULL, chunk_index INTEGER NOT NULL, \
                     content TEXT NOT NULL, token_count INTEGER NOT NULL, mime_type TEXT, metadata TEXT NOT NULL, \
                     embedding vector({dim}) NOT NULL, PRIMARY KEY (document_id, chunk_index))"
                );
                self.timed("creating the chunk table", tx.batch_execute(&create)).await?;
                if self.hnsw {
                    let index =
                        format!("CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)");
                    self.timed("creating the HNSW index", tx.batch_execute(&index)).await?;
                }
            }
        }
        if !self.table_exists(&tx, &table).await? {
            return Ok(());
        }
        let ids: Vec<&str> = docs.iter().map(|d| d.document_id.as_str()).collect();
        if must_exist {
            let sql = format!("SELECT DISTINCT document_id FROM {table} WHERE document_id = ANY($1)");
            let rows = self.timed("reading documents", tx.query(&sql, &[&ids])).await?;
            let found: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
            if let Some(missing) = ids.iter().find(|i| !found.iter().any(|f| f == *i)) {
                return Err(Error::invalid(format!(
                    "document `{missing}` is not in memory bank `{id}`; insert it first"
                )));
            }
        }
        let delete = format!("DELETE FROM {table} WHERE document_id = ANY($1)");
        self.timed("replacing documents", tx.execute(&delete, &[&ids])).await?;
        let insert = format!(
            "INSERT INTO {table} (document_id, chunk_index, content, token_count, mime_type, metadata, embedding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::vector)"
        );
        let stmt = self.timed("preparing the insert", tx.prepare(&insert)).await?;
        for d in &docs {
            let per = d.vectors.len() / d.chunks.len().max(1);
            let metadata = serde_json::to_string(&d.metadata).map_err(|e| Error::internal(e.to_string()))?;
            for (i, c) in d.chunks.iter().enumerate() {
                let v = d.vectors.get(i * per..(i + 1) * per).unwrap_or_default();
                let index = i32::try_from(i).unwrap_or(i32::MAX);
                let tokens = i32::try_from(c.token_count).unwrap_or(i32::MAX);
                let literal = vector_literal(v);
                let what = format!("storing document `{}`", d.document_id);
                self.timed(
                    &what,
                    tx.execute(
                        &stmt,
                        &[&d.document_id, &index, &c.content, &tokens, &d.mime_type, &metadata, &literal],
                    ),
                )
                .await?;
            }
        }
        self.timed("committing", tx.commit()).await
    }
}

#[async_trait]
impl MemoryProvider for PgVectorMemory {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>> {
        let client = self.client().await?;
        let sql = format!("SELECT bank_id, definition FROM {BANKS_TABLE} WHERE provider_id = $1 ORDER BY bank_id");
        let rows = self.timed("listing banks", client.query(&sql, &[&self.provider_id])).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let text: String = r.try_get(1).ok()?;
                stored_bank_definition(&text, &self.provider_id, "pgvector")
            })
            .collect())
    }

    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()> {
        let model = vector_bank(bank, "pgvector")?;
        self.prep.embedders.check(model).await?;
        let client = self.client().await?;
        if let Some(old) = self.stored_bank(&client, bank.identifier()).await? {
            same_embedding_model(&old, bank, model, "pgvector")?;
        }
        let value = serde_json::to_string(bank).map_err(|e| Error::internal(e.to_string()))?;
        let table = table_name(&self.provider_id, bank.identifier());
        let sql = format!(
            "INSERT INTO {BANKS_TABLE} (provider_id, bank_id, definition, chunk_table) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider_id, bank_id) DO UPDATE SET definition = EXCLUDED.definition"
        );
        self.timed(
            "registering a bank",
            client.execute(&sql, &[&self.provider_id, &bank.identifier(), &value, &table]),
        )
        .await?;
        Ok(())
    }

    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        _ttl_seconds: Option<i64>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "pgvector")?;
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        self.write(bank, prepared, false).await
    }

    async fn update_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "pgvector")?;
        let table = table_name(&self.provider_id, bank.identifier());
        let client = self.client().await?;
        if !self.table_exists(&client, &table).await? {
            if let Some(d) = documents.first() {
                return Err(Error::invalid(format!(
                    "document `{}` is not in memory bank `{}`; insert it first",
                    d.document_id,
                    bank.identifier()
                )));
            }
        }
        drop(client);
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        self.write(bank, prepared, true).await
    }

    async fn delete_documents(
        &self,
        bank: &MemoryBankDef,
        document_ids: Vec<String>,
        _ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "pgvector")?;
        let table = table_name(&self.provider_id, bank.identifier());
        let client = self.client().await?;
        if !self.table_exists(&client, &table).await? {
            return Ok(());
        }
        let sql = format!("DELETE FROM {table} WHERE document_id = ANY($1)");
        self.timed("deleting documents", client.execute(&sql, &[&document_ids])).await?;
        Ok(())
    }

    async fn drop_memory_bank(&self, bank: &MemoryBankDef, _ctx: &RequestContext) -> Result<()> {
        let table = table_name(&self.provider_id, bank.identifier());
        let mut client = self.client().await?;
        let tx = self.timed("starting a transaction", client.transaction()).await?;
        self.timed("locking the bank", tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&table])).await?;
        self.timed("dropping the chunk table", tx.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))).await?;
        let sql = format!("DELETE FROM {BANKS_TABLE} WHERE provider_id = $1 AND bank_id = $2");
        self.timed("dropping a bank", tx.execute(&sql, &[&self.provider_id, &bank.identifier()])).await?;
        self.timed("committing", tx.commit()).await
    }

    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse> {
        let params = QueryParams::parse(params.as_ref())?;
        let model = vector_bank(bank, "pgvector")?;
        let text = query_text(&query)?;
        let mut out = QueryDocumentsResponse { chunks: Vec::new(), scores: Vec::new() };
        let table = table_name(&self.provider_id, bank.identifier());
        let client = self.client().await?;
        if params.max_chunks == 0 || !self.table_exists(&client, &table).await? {
            return Ok(out);
        }
        let q = self.prep.embedders.embed(model, vec![text], ctx).await?.into_iter().next().unwrap_or_default();
        let sql = format!(
            "SELECT document_id, content, token_count, 1 - (embedding <=> $1::text::vector) AS score \
             FROM {table} ORDER BY embedding <=> $1::text::vector LIMIT $2"
        );
        let limit = i64::try_from(params.max_chunks).unwrap_or(i64::MAX);
        let rows = self.timed("searching", client.query(&sql, &[&vector_literal(&q), &limit])).await?;
        for r in rows {
            let score: f64 = r.try_get(3).map_err(|e| self.fail("reading a result", &e))?;
            if params.score_threshold.is_some_and(|t| score < t) {
                continue;
            }
            let tokens: i32 = r.try_get(2).map_err(|e| self.fail("reading a result", &e))?;
            out.chunks.push(Chunk {
                content: InterleavedTextMedia::Text(r.try_get(1).map_err(|e| self.fail("reading a result", &e))?),
                token_count: i64::from(tokens),
                document_id: r.try_get(0).map_err(|e| self.fail("reading a result", &e))?,
            });
            out.scores.push(score);
        }
        Ok(out)
    }
}

//! The `remote::weaviate` memory provider: vector banks kept in a Weaviate cluster, spoken to
//! over Weaviate's REST API (`/v1/schema`, `/v1/batch/objects`) and its `GraphQL` `Get` with
//! `nearVector`.
//!
//! As upstream, the cluster and its key come with each request, in the
//! `X-LlamaStack-ProviderData` header (`weaviate_cluster_url`, `weaviate_api_key`; a URL without
//! a scheme is `https://`), and the provider config has no required field. Registering a bank
//! therefore reaches no cluster: its definition is kept in the stack's store, and its class is
//! created in the request's cluster by the first insert that needs it. One class per bank, named
//! after the bank as Weaviate wants class names (first letter upper-case; other ids get
//! `Lsrs_<sanitised>_<hash>`), no vectorizer, cosine distance, properties `chunk_content`
//! (upstream's chunk JSON), `document_id`, `chunk_index` and `generation` (see
//! [`super::remote`]). Scores are cosine similarity, `1 - distance`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::provider::{Preparer, same_embedding_model, stored_bank_definition, vector_bank};
use super::remote::{self, Api, ChunkRecord, ChunkStore};
use crate::error::{Error, Result};
use crate::kvstore::KvStore;
use crate::providers::RequestContext;
use crate::providers::inference::client::Service;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::BuildArgs;
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::MemoryBankDef;

static WEAVIATE: Service = Service::new("Weaviate", "", "weaviate_api_key");

/// Objects per batch insert.
const BATCH: usize = 200;
/// Rounds of a batch delete (each removes at most the server's `QUERY_MAXIMUM_RESULTS`).
const MAX_DELETE_ROUNDS: usize = 1000;

/// Upstream's `WeaviateConfig` has no fields; these are this project's, with defaults.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WeaviateConfig {
    #[serde(default)]
    pub allow_private_urls: bool,
    #[serde(default)]
    pub tokenizer: Option<String>,
}

pub struct WeaviateMemory {
    provider_id: String,
    api: Api,
    store: Arc<dyn KvStore>,
    prep: Preparer,
}

/// The class of a bank: the id with its first letter upper-cased when it is a `GraphQL` name
/// (`[A-Za-z][_0-9A-Za-z]*`), as Weaviate's clients do; else `Lsrs_<sanitised>_<hash>`.
pub fn class_name(bank_id: &str) -> String {
    let mut chars = bank_id.chars();
    if let Some(first) = chars.next() {
        let rest = chars.as_str();
        if first.is_ascii_alphabetic()
            && bank_id.len() <= 200
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return format!("{}{rest}", first.to_ascii_uppercase());
        }
    }
    let clean: String = bank_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
    let mut hash = String::new();
    for b in Sha256::digest(bank_id.as_bytes()).iter().take(8) {
        let _ = write!(hash, "{b:02x}");
    }
    format!("Lsrs_{clean}_{hash}")
}

/// The cluster a request names, and its key.
struct Cluster {
    base: String,
    key: String,
}

fn cluster(ctx: &RequestContext) -> Result<Cluster> {
    let url = ctx.provider_string("weaviate_cluster_url").map(str::trim).filter(|u| !u.is_empty());
    let key = ctx.provider_string("weaviate_api_key");
    let (Some(url), Some(key)) = (url, key) else {
        return Err(Error::invalid(
            "remote::weaviate needs `weaviate_cluster_url` and `weaviate_api_key` in the X-LlamaStack-ProviderData \
             header of the request (a JSON object)",
        ));
    };
    let base = if url.starts_with("http://") || url.starts_with("https://") {
        url.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", url.trim_end_matches('/'))
    };
    reqwest::Url::parse(&base)
        .map_err(|e| Error::invalid(format!("`weaviate_cluster_url` `{url}` is not a usable URL: {e}")))?;
    Ok(Cluster { base, key: key.to_owned() })
}

/// How a class's distance becomes cosine similarity (vectors are unit length).
fn similarity(metric: &str, distance: f64) -> f64 {
    match metric {
        "dot" => -distance,
        "l2-squared" => 1.0 - distance / 2.0,
        _ => 1.0 - distance,
    }
}

/// One bank's class in one cluster.
struct Class<'a> {
    w: &'a WeaviateMemory,
    cluster: Cluster,
    name: String,
    metric: String,
}

/// A where filter on one text property (`Equal`, `NotEqual`) or a list of values (`ContainsAny`).
fn text_filter(property: &str, operator: &str, value: &Value) -> Value {
    let key = if value.is_array() { "valueTextArray" } else { "valueText" };
    json!({"path": [property], "operator": operator, key: value})
}

impl Class<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.w.api.expect(method, &self.cluster.base, path, body, Some(&self.cluster.key)).await
    }

    fn bad(&self, path: &str, detail: impl std::fmt::Display) -> Error {
        self.w.api.bad_answer(&self.cluster.base, path, detail)
    }

    /// `DELETE /v1/batch/objects` until nothing matches; or with `dry_run`, how many match.
    async fn delete_where(&self, filter: Value, dry_run: bool) -> Result<u64> {
        let path = "/v1/batch/objects";
        let body = json!({"match": {"class": self.name, "where": filter}, "output": "minimal", "dryRun": dry_run});
        let mut total = 0;
        for _ in 0..MAX_DELETE_ROUNDS {
            let answer = self.call(Method::DELETE, path, Some(&body)).await?;
            let results = answer.get("results").ok_or_else(|| self.bad(path, "no `results`"))?;
            let num = |k: &str| results.get(k).and_then(Value::as_u64).unwrap_or(0);
            let (matches, limit, failed, done) = (num("matches"), num("limit"), num("failed"), num("successful"));
            if dry_run {
                return Ok(matches);
            }
            if failed > 0 {
                let why = results
                    .pointer("/objects/0/errors/error/0/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(Error::Upstream {
                    provider: self.w.provider_id.clone(),
                    message: format!("Weaviate at {} could not delete {failed} objects: {why}", self.cluster.base),
                });
            }
            total += done;
            // A round stops at the server's limit; what is left is deleted by the next one.
            if limit == 0 || matches < limit || done == 0 {
                return Ok(total);
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl ChunkStore for Class<'_> {
    fn batch_size(&self) -> usize {
        BATCH
    }

    async fn add(&self, generation: &str, records: &[ChunkRecord]) -> Result<()> {
        let objects: Vec<Value> = records
            .iter()
            .map(|r| {
                json!({
                    "class": self.name,
                    "properties": {
                        "chunk_content": r.text,
                        "document_id": r.document_id,
                        "chunk_index": r.index,
                        "generation": generation,
                    },
                    "vector": r.vector,
                })
            })
            .collect();
        let path = "/v1/batch/objects";
        let answer = self.call(Method::POST, path, Some(&json!({"objects": objects}))).await?;
        let items = answer.as_array().ok_or_else(|| self.bad(path, "not a list"))?;
        // The request succeeds even when objects fail; each says so in `result.errors`.
        let failure = items.iter().find_map(|o| o.pointer("/result/errors/error/0/message").and_then(Value::as_str));
        if let Some(message) = failure {
            return Err(Error::Upstream {
                provider: self.w.provider_id.clone(),
                message: format!(
                    "Weaviate at {} refused objects of class `{}`: {message}",
                    self.cluster.base, self.name
                ),
            });
        }
        Ok(())
    }

    async fn remove_documents(&self, document_ids: &[String], keep: Option<&str>) -> Result<()> {
        let docs = text_filter("document_id", "ContainsAny", &json!(document_ids));
        let filter = match keep {
            Some(g) => json!({"operator": "And", "operands": [docs, text_filter("generation", "NotEqual", &json!(g))]}),
            None => docs,
        };
        self.delete_where(filter, false).await.map(drop)
    }

    async fn remove_generation(&self, generation: &str) -> Result<()> {
        self.delete_where(text_filter("generation", "Equal", &json!(generation)), false).await.map(drop)
    }

    async fn existing(&self, document_ids: &[String]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for id in document_ids {
            let filter = text_filter("document_id", "Equal", &json!(id));
            if self.delete_where(filter, true).await? > 0 {
                found.insert(id.clone());
            }
        }
        Ok(found)
    }

    async fn nearest(&self, vector: &[f32], k: usize) -> Result<Vec<(String, f64)>> {
        let literal = serde_json::to_string(vector).map_err(|e| Error::internal(e.to_string()))?;
        let query = format!(
            "{{ Get {{ {}(nearVector: {{vector: {literal}}}, limit: {k}) {{ chunk_content _additional {{ distance }} }} }} }}",
            self.name
        );
        let path = "/v1/graphql";
        let answer = self.call(Method::POST, path, Some(&json!({"query": query}))).await?;
        if let Some(message) = answer.pointer("/errors/0/message").and_then(Value::as_str) {
            return Err(Error::Upstream {
                provider: self.w.provider_id.clone(),
                message: format!("Weaviate at {} answered the search with an error: {message}", self.cluster.base),
            });
        }
        let hits = answer
            .get("data")
            .and_then(|d| d.get("Get"))
            .and_then(|g| g.get(&self.name))
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad(path, format!("no `data.Get.{}`", self.name)))?;
        Ok(hits
            .iter()
            .filter_map(|h| {
                let text = h.get("chunk_content")?.as_str()?.to_owned();
                let distance = h.pointer("/_additional/distance")?.as_f64()?;
                Some((text, similarity(&self.metric, distance)))
            })
            .collect())
    }
}

impl WeaviateMemory {
    pub async fn build(args: BuildArgs) -> Result<Arc<Self>> {
        let mut cleaned = args.config.clone();
        cleaned.retain(|_, v| !v.is_null());
        let config: WeaviateConfig = serde_json::from_value(Value::Object(cleaned))
            .map_err(|e| Error::config(format!("memory provider `{}` (remote::weaviate): {e}", args.provider_id)))?;
        let api = Api::new(&args.provider_id, &WEAVIATE)?;
        let prep =
            Preparer::remote(config.allow_private_urls, config.tokenizer.clone(), args.deps.models.clone()).await?;
        Ok(Arc::new(Self { provider_id: args.provider_id, api, store: args.deps.store.clone(), prep }))
    }

    fn bank_key(&self, bank_id: &str) -> String {
        format!("memory:{}:bank:{bank_id}", self.provider_id)
    }

    /// The bank's class in the request's cluster; `None` when the cluster has none and `create`
    /// is false.
    async fn class(&self, bank: &MemoryBankDef, ctx: &RequestContext, create: bool) -> Result<Option<Class<'_>>> {
        let cluster = cluster(ctx)?;
        let name = class_name(bank.identifier());
        let path = format!("/v1/schema/{name}");
        let key = Some(cluster.key.as_str());
        let schema = match self.api.call(Method::GET, &cluster.base, &path, None, key).await? {
            Ok(s) => s,
            Err(r) if r.status == StatusCode::NOT_FOUND && !create => return Ok(None),
            Err(r) if r.status == StatusCode::NOT_FOUND => {
                let field = |name: &str| json!({"name": name, "dataType": ["text"], "tokenization": "field"});
                let body = json!({
                    "class": name,
                    "description": format!("Llama Stack memory bank `{}`", bank.identifier()),
                    "vectorizer": "none",
                    "vectorIndexConfig": {"distance": "cosine"},
                    "properties": [
                        {"name": "chunk_content", "dataType": ["text"]},
                        field("document_id"),
                        {"name": "chunk_index", "dataType": ["int"]},
                        field("generation"),
                    ],
                });
                match self.api.call(Method::POST, &cluster.base, "/v1/schema", Some(&body), key).await? {
                    Ok(s) => s,
                    // Created meanwhile by another request.
                    Err(r)
                        if r.status == StatusCode::UNPROCESSABLE_ENTITY && r.body.to_string().contains("already") =>
                    {
                        self.api.expect(Method::GET, &cluster.base, &path, None, key).await?
                    }
                    Err(r) => return Err(self.api.refused(&cluster.base, "/v1/schema", &r)),
                }
            }
            Err(r) => return Err(self.api.refused(&cluster.base, &path, &r)),
        };
        let metric =
            schema.pointer("/vectorIndexConfig/distance").and_then(Value::as_str).unwrap_or("cosine").to_owned();
        Ok(Some(Class { w: self, cluster, name, metric }))
    }

    async fn class_or_create(&self, bank: &MemoryBankDef, ctx: &RequestContext) -> Result<Class<'_>> {
        self.class(bank, ctx, true)
            .await?
            .ok_or_else(|| Error::internal(format!("memory bank `{}`: its class was not created", bank.identifier())))
    }
}

#[async_trait]
impl MemoryProvider for WeaviateMemory {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>> {
        let rows = self.store.scan_prefix(&format!("memory:{}:bank:", self.provider_id)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| stored_bank_definition(&v, &self.provider_id, &format!("weaviate row `{k}`")))
            .collect())
    }

    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()> {
        let model = vector_bank(bank, "weaviate")?;
        self.prep.embedders.check(model).await?;
        let key = self.bank_key(bank.identifier());
        if let Some(text) = self.store.get(&key).await? {
            if let Ok(old) = serde_json::from_str::<MemoryBankDef>(&text) {
                same_embedding_model(&old, bank, model, "weaviate")?;
            }
        }
        let value = serde_json::to_string(bank).map_err(|e| Error::internal(e.to_string()))?;
        self.store.set(&key, &value).await
    }

    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        _ttl_seconds: Option<i64>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "weaviate")?;
        cluster(ctx)?;
        if self.store.get(&self.bank_key(bank.identifier())).await?.is_none() {
            return Err(Error::invalid(format!("memory bank `{}` was dropped; register it again", bank.identifier())));
        }
        let prepared = self.prep.prepare(bank, documents, ctx).await?;
        let class = self.class_or_create(bank, ctx).await?;
        remote::write_documents(&class, &prepared).await
    }

    async fn update_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "weaviate")?;
        let class = self.class(bank, ctx, false).await?;
        remote::update(class.as_ref().map(|c| c as &dyn ChunkStore), &self.prep, bank, documents, ctx).await
    }

    async fn delete_documents(
        &self,
        bank: &MemoryBankDef,
        document_ids: Vec<String>,
        ctx: &RequestContext,
    ) -> Result<()> {
        vector_bank(bank, "weaviate")?;
        match self.class(bank, ctx, false).await? {
            Some(c) if !document_ids.is_empty() => c.remove_documents(&document_ids, None).await,
            _ => Ok(()),
        }
    }

    async fn drop_memory_bank(&self, bank: &MemoryBankDef, ctx: &RequestContext) -> Result<()> {
        let cluster = cluster(ctx)?;
        let path = format!("/v1/schema/{}", class_name(bank.identifier()));
        match self.api.call(Method::DELETE, &cluster.base, &path, None, Some(&cluster.key)).await? {
            Ok(_) => {}
            Err(r) if r.status == StatusCode::NOT_FOUND => {}
            Err(r) => return Err(self.api.refused(&cluster.base, &path, &r)),
        }
        self.store.delete(&self.bank_key(bank.identifier())).await
    }

    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse> {
        let model = vector_bank(bank, "weaviate")?;
        let class = self.class(bank, ctx, false).await?;
        remote::query(class.as_ref().map(|c| c as &dyn ChunkStore), &self.prep, model, &query, params.as_ref(), ctx)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_follow_weaviate_rules() {
        assert_eq!(class_name("notes"), "Notes");
        assert_eq!(class_name("Test_bank2"), "Test_bank2");
        for odd in ["Docs: Animals/2024", "1bank", "", "my-bank", "é"] {
            let n = class_name(odd);
            assert!(n.starts_with("Lsrs_") && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{n}");
        }
        assert_ne!(class_name("a-b"), class_name("a.b"));
    }

    #[test]
    fn the_cluster_comes_from_provider_data() {
        let none = RequestContext::default();
        let e = cluster(&none).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("weaviate_cluster_url") && e.contains("weaviate_api_key"), "{e}");
        let ctx = RequestContext::from_header(Some(
            r#"{"weaviate_cluster_url": "my-cluster.weaviate.cloud/", "weaviate_api_key": "k"}"#,
        ));
        let c = cluster(&ctx).ok();
        assert_eq!(c.as_ref().map(|c| c.base.as_str()), Some("https://my-cluster.weaviate.cloud"));
        assert!((similarity("cosine", 0.25) - 0.75).abs() < 1e-9);
        assert!((similarity("l2-squared", 0.5) - 0.75).abs() < 1e-9);
    }
}

//! The `meta-reference` provider on an in-memory store: keyword and keyvalue banks end to end,
//! atomic inserts, update, delete, persistence across provider instances, refusals.
//!
//! These need the Llama 3 tokenizer from `llama_models` (found through `$LLAMA_STACK_PYTHON`);
//! without that variable they are skipped, with it a missing tokenizer fails them.

use std::sync::Arc;

use serde_json::json;

use super::MetaReferenceMemory;
use crate::error::Error;
use crate::kvstore::{KvStore, MemoryKvStore};
use crate::providers::RequestContext;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::BuildArgs;
use crate::types::memory::MemoryBankDocument;
use crate::types::memory_banks::MemoryBankDef;

async fn provider(store: &Arc<dyn KvStore>) -> Option<Arc<MetaReferenceMemory>> {
    if std::env::var_os("LLAMA_STACK_PYTHON").is_none() && super::load_tokenizer(None).is_err() {
        return None;
    }
    let mut args = BuildArgs::standalone("mem", serde_json::Map::new());
    args.deps.store = Arc::clone(store);
    Some(MetaReferenceMemory::build(args).await.unwrap())
}

fn bank(v: serde_json::Value) -> MemoryBankDef {
    let mut b: MemoryBankDef = serde_json::from_value(v).unwrap();
    b.set_provider_id("mem");
    b
}

fn doc(id: &str, content: serde_json::Value) -> MemoryBankDocument {
    let mut v = json!({"document_id": id, "metadata": {"source": id}});
    v["content"] = content;
    serde_json::from_value(v).unwrap()
}

fn ids(r: &crate::types::memory::QueryDocumentsResponse) -> Vec<&str> {
    r.chunks.iter().map(|c| c.document_id.as_str()).collect()
}

#[tokio::test]
async fn keyword_bank_insert_query_update_delete_and_reload() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let Some(p) = provider(&store).await else { return };
    let ctx = RequestContext::default();
    let kw = bank(json!({"identifier": "kw", "type": "keyword"}));
    p.register_memory_bank(&kw).await.unwrap();
    p.insert_documents(
        &kw,
        vec![
            doc("cats", json!("Cats purr and sleep all day.")),
            doc("dogs", json!(["Dogs bark", "at the mail carrier."])),
            doc("html", json!({"uri": "data:text/html,<p>Volcanoes%20erupt%20lava</p>"})),
        ],
        None,
        &ctx,
    )
    .await
    .unwrap();
    let r = p.query_documents(&kw, "purr".into(), None, &ctx).await.unwrap();
    assert_eq!(ids(&r), ["cats"]);
    assert!(r.scores[0] > 0.0);
    let r = p.query_documents(&kw, "lava".into(), None, &ctx).await.unwrap();
    assert_eq!(ids(&r), ["html"]);

    // A failing document fails the whole insert, and nothing of it is kept.
    let err = p
        .insert_documents(
            &kw,
            vec![
                doc("fish", json!("Fish swim and purr never.")),
                doc("broken", json!({"uri": "data:text/plain;base64,%%%"})),
            ],
            None,
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidValue(_)) && err.to_string().contains("`broken`"), "{err}");
    let r = p
        .query_documents(&kw, "purr".into(), Some(json!({"max_chunks": 10}).as_object().unwrap().clone()), &ctx)
        .await
        .unwrap();
    assert_eq!(ids(&r), ["cats"]);

    let err = p.update_documents(&kw, vec![doc("ghost", json!("x"))], &ctx).await.unwrap_err();
    assert!(err.to_string().contains("`ghost`"), "{err}");
    p.update_documents(&kw, vec![doc("cats", json!("Cats hunt mice."))], &ctx).await.unwrap();
    assert!(p.query_documents(&kw, "purr".into(), None, &ctx).await.unwrap().chunks.is_empty());
    p.delete_documents(&kw, vec!["dogs".into(), "never-there".into()], &ctx).await.unwrap();
    assert!(p.query_documents(&kw, "bark".into(), None, &ctx).await.unwrap().chunks.is_empty());

    // A new provider on the same store serves the same bank and documents.
    let again = provider(&store).await.unwrap();
    assert_eq!(again.list_memory_banks().await.unwrap(), vec![kw.clone()]);
    let r = again.query_documents(&kw, "mice".into(), None, &ctx).await.unwrap();
    assert_eq!(ids(&r), ["cats"]);
    assert_eq!(r.chunks[0].content.as_text(""), "Cats hunt mice.");
}

#[tokio::test]
async fn keyvalue_and_refusals() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let Some(p) = provider(&store).await else { return };
    let ctx = RequestContext::default();
    let kv = bank(json!({"identifier": "kv", "type": "keyvalue"}));
    p.register_memory_bank(&kv).await.unwrap();
    p.insert_documents(&kv, vec![doc("colour", json!("blue"))], None, &ctx).await.unwrap();
    let r = p.query_documents(&kv, "colour".into(), None, &ctx).await.unwrap();
    assert_eq!((ids(&r), r.scores.clone()), (vec!["colour"], vec![1.0]));
    assert_eq!(r.chunks[0].token_count, 1);
    assert!(p.query_documents(&kv, "size".into(), None, &ctx).await.unwrap().chunks.is_empty());

    let graph = bank(json!({"identifier": "g", "type": "graph"}));
    assert!(matches!(p.register_memory_bank(&graph).await, Err(Error::NotImplemented(m)) if m.contains("graph")));
    let bad = bank(json!({"identifier": "v", "embedding_model": "m", "chunk_size_in_tokens": 0}));
    assert!(p.register_memory_bank(&bad).await.unwrap_err().to_string().contains("chunk_size_in_tokens"));
    let bad = bank(
        json!({"identifier": "v", "embedding_model": "m", "chunk_size_in_tokens": 8, "overlap_size_in_tokens": 8}),
    );
    assert!(p.register_memory_bank(&bad).await.unwrap_err().to_string().contains("overlap_size_in_tokens"));
    let changed = bank(json!({"identifier": "kv", "type": "keyword"}));
    assert!(p.register_memory_bank(&changed).await.unwrap_err().to_string().contains("already exists"));

    let err = p.insert_documents(&kv, vec![doc("a", json!("x")), doc("a", json!("y"))], None, &ctx).await.unwrap_err();
    assert!(err.to_string().contains("twice"));
    let err = p
        .query_documents(&kv, "x".into(), Some(json!({"max_chunks": "many"}).as_object().unwrap().clone()), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_chunks"), "{err}");
    assert!(p.query_documents(&kv, " ".into(), None, &ctx).await.is_err());
}

/// An inference provider whose only skill is a bag-of-words embedding (64 hashed buckets), to
/// drive vector banks through the model routing table without a real model.
struct BagOfWords;

#[async_trait::async_trait]
impl crate::providers::inference::InferenceProvider for BagOfWords {
    async fn list_models(&self) -> crate::error::Result<Vec<crate::types::models::ModelDef>> {
        Ok(vec![crate::types::models::ModelDef {
            identifier: "bow".into(),
            llama_model: "bow".into(),
            metadata: serde_json::Map::new(),
        }])
    }
    async fn register_model(&self, _: &crate::types::models::ModelDefWithProvider) -> crate::error::Result<()> {
        Ok(())
    }
    async fn chat_completion(
        &self,
        _: &crate::types::models::ModelDefWithProvider,
        _: crate::types::inference::ChatCompletionRequest,
        _: &RequestContext,
    ) -> crate::error::Result<crate::types::inference::ChatCompletionResponse> {
        Err(Error::not_implemented("embeddings only"))
    }
    async fn chat_completion_stream(
        &self,
        _: &crate::types::models::ModelDefWithProvider,
        _: crate::types::inference::ChatCompletionRequest,
        _: &RequestContext,
    ) -> crate::error::Result<crate::providers::inference::ChatStream> {
        Err(Error::not_implemented("embeddings only"))
    }
    async fn completion(
        &self,
        _: &crate::types::models::ModelDefWithProvider,
        _: crate::types::inference::CompletionRequest,
        _: &RequestContext,
    ) -> crate::error::Result<crate::types::inference::CompletionResponse> {
        Err(Error::not_implemented("embeddings only"))
    }
    async fn completion_stream(
        &self,
        _: &crate::types::models::ModelDefWithProvider,
        _: crate::types::inference::CompletionRequest,
        _: &RequestContext,
    ) -> crate::error::Result<crate::providers::inference::CompletionStream> {
        Err(Error::not_implemented("embeddings only"))
    }
    async fn embeddings(
        &self,
        _: &crate::types::models::ModelDefWithProvider,
        contents: Vec<crate::types::common::InterleavedTextMedia>,
        _: &RequestContext,
    ) -> crate::error::Result<crate::types::inference::EmbeddingsResponse> {
        let embeddings = contents
            .iter()
            .map(|c| {
                let mut v = vec![0.0f64; 64];
                for w in super::index::words(&c.as_text(" ")) {
                    let h = w.bytes().fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
                    v[h % 64] += 1.0;
                }
                v
            })
            .collect();
        Ok(crate::types::inference::EmbeddingsResponse { embeddings })
    }
}

#[tokio::test]
async fn vector_bank_through_a_served_embedding_model() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    if std::env::var_os("LLAMA_STACK_PYTHON").is_none() && super::load_tokenizer(None).is_err() {
        return;
    }
    let mut providers: indexmap::IndexMap<String, Arc<dyn crate::providers::inference::InferenceProvider>> =
        indexmap::IndexMap::new();
    providers.insert("bag".into(), Arc::new(BagOfWords));
    let models = Arc::new(crate::routing::ModelTable::new(providers, Arc::clone(&store)));
    models.initialize(Vec::new()).await.unwrap();
    let build = |store: Arc<dyn KvStore>, models: Arc<crate::routing::ModelTable>| async move {
        let mut args = BuildArgs::standalone("mem", serde_json::Map::new());
        args.deps.store = store;
        args.deps.models = Some(models);
        MetaReferenceMemory::build(args).await.unwrap()
    };
    let p = build(Arc::clone(&store), Arc::clone(&models)).await;
    let ctx = RequestContext::default();
    let vb = bank(
        json!({"identifier": "v", "embedding_model": "bow", "chunk_size_in_tokens": 8, "overlap_size_in_tokens": 2}),
    );
    p.register_memory_bank(&vb).await.unwrap();
    let long = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma";
    p.insert_documents(
        &vb,
        vec![
            doc("greek", json!(long)),
            doc("fruit", json!("apple banana cherry")),
            doc("tools", json!("hammer saw drill")),
        ],
        None,
        &ctx,
    )
    .await
    .unwrap();
    let r = p.query_documents(&vb, "banana apple".into(), None, &ctx).await.unwrap();
    assert_eq!(r.chunks.len(), 3);
    assert_eq!(r.chunks[0].document_id, "fruit");
    assert!(r.scores[0] > r.scores[1] && r.scores.iter().all(|s| s.is_finite()));
    // The long document is cut into overlapping 8-token windows.
    let r = p
        .query_documents(
            &vb,
            "sigma".into(),
            Some(json!({"max_chunks": 10, "score_threshold": 0.1}).as_object().unwrap().clone()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(r.chunks.iter().all(|c| c.document_id == "greek" && c.token_count <= 8), "{r:?}");
    assert!(!r.chunks.is_empty() && r.chunks.iter().any(|c| c.content.as_text("").contains("sigma")));

    p.delete_documents(&vb, vec!["fruit".into()], &ctx).await.unwrap();
    let again = build(Arc::clone(&store), models).await;
    let r = again
        .query_documents(&vb, "banana apple".into(), Some(json!({"max_chunks": 10}).as_object().unwrap().clone()), &ctx)
        .await
        .unwrap();
    assert!(r.chunks.iter().all(|c| c.document_id != "fruit"));
    assert!(r.chunks.iter().any(|c| c.document_id == "tools"));

    let unknown = bank(json!({"identifier": "u", "embedding_model": "no-such-model", "chunk_size_in_tokens": 8}));
    let err = again.register_memory_bank(&unknown).await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue(_)) && err.to_string().contains("no-such-model"), "{err}");
}

#[tokio::test]
async fn dropping_a_bank_removes_it_and_its_documents() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let Some(p) = provider(&store).await else { return };
    let ctx = RequestContext::default();
    let (kw, other) =
        (bank(json!({"identifier": "kw", "type": "keyword"})), bank(json!({"identifier": "k", "type": "keyword"})));
    p.register_memory_bank(&kw).await.unwrap();
    p.register_memory_bank(&other).await.unwrap();
    p.insert_documents(&kw, vec![doc("cats", json!("Cats purr."))], None, &ctx).await.unwrap();
    p.insert_documents(&other, vec![doc("dogs", json!("Dogs bark."))], None, &ctx).await.unwrap();
    p.drop_memory_bank(&kw, &ctx).await.unwrap();
    let listed: Vec<String> = p.list_memory_banks().await.unwrap().iter().map(|b| b.identifier().to_owned()).collect();
    assert_eq!(listed, ["k"]);
    assert!(store.scan_prefix("memory:mem:doc:kw\u{1}").await.unwrap().is_empty());
    assert!(p.query_documents(&kw, "cats purr".into(), None, &ctx).await.unwrap().chunks.is_empty());
    assert_eq!(ids(&p.query_documents(&other, "dogs".into(), None, &ctx).await.unwrap()), ["dogs"]);
}

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

//! The `embedded` provider running the real SmolLM2-135M-Instruct GGUF on llama.cpp: greedy
//! determinism, `max_tokens`, streaming, cancellation by dropping a stream, the concurrency
//! bound, and alias registration.
//!
//! The model is fetched once, through the provider's own cache code, into a cache shared by
//! test runs: `$LSRS_MODEL_CACHE/checkpoints` (default `~/.cache/lsrs/models/checkpoints`).
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::inference::embedded::{EmbeddedInference, cache};
use llama_stack_rs::providers::registry::{self, BuildArgs};
use llama_stack_rs::types::common::{InterleavedTextMedia, JsonObject, StopReason};
use llama_stack_rs::types::inference::{
    ChatCompletionRequest, ChatCompletionResponseEventType as Event, CompletionRequest, EventDelta,
};
use llama_stack_rs::types::models::ModelDefWithProvider;
use serde_json::{Value, json};

const MODEL: &str = "SmolLM2-135M-Instruct";

/// The cached GGUF file, fetched on first use (once per test binary).
fn model_file() -> PathBuf {
    static FETCHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut slot = FETCHED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = slot.as_ref() {
        return p.clone();
    }
    let root = std::env::var_os("LSRS_MODEL_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/lsrs/models"), PathBuf::from);
    let path = cache::ensure_model_in(&root.join("checkpoints"), MODEL).unwrap();
    *slot = Some(path.clone());
    path
}

async fn provider(max_concurrent: u32, context_length: u32) -> EmbeddedInference {
    let file = tokio::task::spawn_blocking(model_file).await.unwrap();
    let config = json!({
        "model": file.to_str().unwrap(),
        "embedding_model": "",
        "context_length": context_length,
        "max_concurrent": max_concurrent,
    });
    EmbeddedInference::load("embedded", config.as_object().unwrap()).await.unwrap()
}

fn model(identifier: &str, llama_model: &str, metadata: Value) -> ModelDefWithProvider {
    ModelDefWithProvider {
        identifier: identifier.into(),
        llama_model: llama_model.into(),
        metadata: match metadata {
            Value::Object(m) => m,
            _ => JsonObject::new(),
        },
        provider_id: "embedded".into(),
    }
}

fn served() -> ModelDefWithProvider {
    model(MODEL, MODEL, json!({}))
}

fn chat(text: &str, sampling: Value) -> ChatCompletionRequest {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": text}]});
    body["sampling_params"] = sampling;
    serde_json::from_value(body).unwrap()
}

fn completion(text: &str, sampling: Value) -> CompletionRequest {
    let mut body = json!({"model": MODEL, "content": text});
    body["sampling_params"] = sampling;
    serde_json::from_value(body).unwrap()
}

fn text_of(c: &InterleavedTextMedia) -> String {
    c.as_text("")
}

#[tokio::test]
async fn greedy_chat_is_deterministic_and_not_empty() {
    let p = provider(1, 1024).await;
    let ctx = RequestContext::default();
    let req = chat("Name three colours.", json!({"strategy": "greedy", "max_tokens": 24}));
    let started = Instant::now();
    let a = p.chat_completion(&served(), req.clone(), &ctx).await.unwrap();
    let elapsed = started.elapsed();
    let b = p.chat_completion(&served(), req, &ctx).await.unwrap();
    let text = text_of(&a.completion_message.content);
    assert!(!text.trim().is_empty(), "empty answer");
    assert_eq!(text, text_of(&b.completion_message.content));
    assert_eq!(a.completion_message.stop_reason, b.completion_message.stop_reason);
    assert!(matches!(a.completion_message.stop_reason, StopReason::EndOfTurn | StopReason::OutOfTokens));
    eprintln!("greedy answer in {elapsed:.2?}: {text:?}");
}

#[tokio::test]
async fn max_tokens_ends_with_out_of_tokens() {
    let p = provider(1, 1024).await;
    let req = completion("1, 2, 3, 4, 5,", json!({"strategy": "greedy", "max_tokens": 5}));
    let chunks: Vec<_> =
        p.completion_stream(&served(), req.clone(), &RequestContext::default()).await.unwrap().collect().await;
    let chunks: Vec<_> = chunks.into_iter().map(Result::unwrap).collect();
    let (last, deltas) = chunks.split_last().unwrap();
    assert_eq!(last.stop_reason, Some(StopReason::OutOfTokens));
    // Each delta holds at least one token.
    assert!(!deltas.is_empty() && deltas.len() <= 5, "{deltas:?}");
    assert!(deltas.iter().all(|c| c.stop_reason.is_none()));

    let whole = p.completion(&served(), req, &RequestContext::default()).await.unwrap();
    assert_eq!(whole.completion_message.stop_reason, StopReason::OutOfTokens);
    let streamed: String = chunks.iter().map(|c| c.delta.as_str()).collect();
    assert_eq!(text_of(&whole.completion_message.content), streamed);
}

#[tokio::test]
async fn logprobs_score_every_generated_token() {
    let p = provider(1, 1024).await;
    let mut req = completion("1, 2, 3, 4, 5,", json!({"strategy": "greedy", "max_tokens": 6}));
    req.logprobs = Some(llama_stack_rs::types::inference::LogProbConfig { top_k: Some(3) });
    let whole = p.completion(&served(), req.clone(), &RequestContext::default()).await.unwrap();
    let scores = whole.logprobs.unwrap();
    assert_eq!(scores.len(), 6, "one entry per generated token");
    for s in &scores {
        assert!(!s.logprobs_by_token.is_empty() && s.logprobs_by_token.len() <= 3, "{s:?}");
        let total: f64 = s.logprobs_by_token.values().map(|lp| lp.exp()).sum();
        assert!(s.logprobs_by_token.values().all(|lp| *lp <= 0.0) && total <= 1.0 + 1e-6, "{s:?}");
    }
    // Greedy decoding picks the likeliest token, so its text leads each entry's candidates and
    // the answer is the concatenation of the best candidates.
    let best: String = scores
        .iter()
        .map(|s| s.logprobs_by_token.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0.clone())
        .collect();
    assert_eq!(best, text_of(&whole.completion_message.content));

    let streamed: Vec<_> = p
        .completion_stream(&served(), req, &RequestContext::default())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let streamed_scores: usize = streamed.iter().filter_map(|c| c.logprobs.as_ref()).map(Vec::len).sum();
    assert_eq!(streamed_scores, 6);
    let plain = completion("1, 2,", json!({"max_tokens": 2}));
    let plain = p.completion(&served(), plain, &RequestContext::default()).await.unwrap();
    assert!(plain.logprobs.is_none(), "no logprobs unless asked");
}

#[tokio::test]
async fn streaming_sends_start_progress_complete() {
    let p = provider(1, 1024).await;
    let ctx = RequestContext::default();
    let req = chat("Say hello.", json!({"strategy": "greedy", "max_tokens": 16}));
    let events: Vec<_> = p.chat_completion_stream(&served(), req.clone(), &ctx).await.unwrap().collect().await;
    let events: Vec<_> = events.into_iter().map(|e| e.unwrap().event).collect();
    let kinds: Vec<Event> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(kinds.first(), Some(&Event::Start));
    assert_eq!(kinds.last(), Some(&Event::Complete));
    assert!(kinds[1..kinds.len() - 1].iter().all(|k| *k == Event::Progress) && kinds.len() > 2, "{kinds:?}");
    let streamed: String = events
        .iter()
        .map(|e| match &e.delta {
            EventDelta::Text(t) => t.clone(),
            EventDelta::ToolCall(_) => panic!("no tools were offered"),
        })
        .collect();
    let whole = p.chat_completion(&served(), req, &ctx).await.unwrap();
    assert_eq!(streamed, text_of(&whole.completion_message.content));
    assert_eq!(events.last().unwrap().stop_reason, Some(whole.completion_message.stop_reason));
}

#[tokio::test]
async fn a_dropped_stream_frees_its_slot_at_once() {
    // One slot and a long generation: the next request only gets through if dropping the first
    // stream stopped it.
    let p = provider(1, 2048).await;
    let ctx = RequestContext::default();
    let long = completion("1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", json!({"strategy": "greedy", "max_tokens": 2000}));
    let mut stream = p.completion_stream(&served(), long, &ctx).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.stop_reason.is_none(), "the generation should still be running: {first:?}");
    drop(stream);
    let started = Instant::now();
    let short = completion("Hello", json!({"strategy": "greedy", "max_tokens": 2}));
    let next = tokio::time::timeout(Duration::from_secs(20), p.completion(&served(), short, &ctx)).await;
    assert!(next.is_ok(), "the dropped generation kept its slot");
    eprintln!("slot free again after {:.2?}", started.elapsed());
}

#[tokio::test]
async fn max_concurrent_makes_requests_wait_their_turn() {
    let p = provider(1, 1024).await;
    let ctx = RequestContext::default();
    let req = completion("1, 2, 3,", json!({"strategy": "greedy", "max_tokens": 400}));
    let held = p.completion_stream(&served(), req.clone(), &ctx).await.unwrap();
    let waiting =
        tokio::time::timeout(Duration::from_millis(1500), p.completion_stream(&served(), req.clone(), &ctx)).await;
    assert!(waiting.is_err(), "a second generation started while the only slot was taken");
    drop(held);
    let next = tokio::time::timeout(Duration::from_secs(20), p.completion_stream(&served(), req.clone(), &ctx)).await;
    assert!(next.is_ok(), "the slot was not given back");
    drop(next);

    let two = provider(2, 1024).await;
    let _a = two.completion_stream(&served(), req.clone(), &ctx).await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(10), two.completion_stream(&served(), req, &ctx)).await;
    assert!(b.is_ok(), "with two slots, two generations run together");
}

#[tokio::test]
async fn other_names_register_as_aliases_of_the_served_model() {
    let p = provider(1, 1024).await;
    let listed = p.list_models().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].identifier.as_str(), listed[0].llama_model.as_str()), (MODEL, MODEL));

    let by_llama_model = model("Llama3.1-8B-Instruct", MODEL, json!({}));
    p.register_model(&by_llama_model).await.unwrap();
    let by_metadata = model("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", json!({"model": MODEL}));
    p.register_model(&by_metadata).await.unwrap();
    let answer = p
        .chat_completion(&by_metadata, chat("Hi", json!({"max_tokens": 4})), &RequestContext::default())
        .await
        .unwrap();
    assert!(matches!(answer.completion_message.stop_reason, StopReason::EndOfTurn | StopReason::OutOfTokens));

    let other = model("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", json!({}));
    let e = p.register_model(&other).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains(MODEL) && e.to_string().contains("Llama3.1-8B-Instruct"), "{e}");

    let e = p.embeddings(&served(), vec![InterleavedTextMedia::Text("x".into())], &RequestContext::default()).await;
    assert!(e.unwrap_err().to_string().contains("embedding_model"));
}

#[tokio::test]
async fn the_registry_builds_it_and_checks_the_config() {
    let file = tokio::task::spawn_blocking(model_file).await.unwrap();
    let mut config = JsonObject::new();
    config.insert("model".into(), json!(file.to_str().unwrap()));
    config.insert("embedding_model".into(), json!(""));
    config.insert("max_concurrent".into(), json!(0));
    let spec = registry::find(llama_stack_rs::config::Api::Inference, "embedded", "x").unwrap();
    assert!(spec.available() && spec.note.is_empty());
    let config = spec.check_config(&config, "providers.inference[0].config").unwrap();
    let build = spec.build.unwrap();
    let e = build(BuildArgs::standalone("emb", config)).await.err().unwrap().to_string();
    assert!(e.contains("emb.config.max_concurrent"), "{e}");
}

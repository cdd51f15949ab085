//! The provider against a small OpenAI-compatible server run in-process: config, model names,
//! keys, chat with streamed tool calls, completion, embeddings, and failures.

use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;

use super::*;
use crate::types::common::StopReason;
use crate::types::inference::{EventDelta, ToolCallDeltaContent};
use serde_json::Value;

fn cfg(v: Value) -> OpenAiConfig {
    serde_json::from_value(v).unwrap()
}

fn model(id: &str, llama: &str) -> ModelDefWithProvider {
    ModelDefWithProvider {
        identifier: id.into(),
        llama_model: llama.into(),
        metadata: JsonObject::new(),
        provider_id: "p".into(),
    }
}

#[test]
fn config_url_timeout_and_models() {
    assert_eq!(cfg(json!({})).base_url("x").unwrap(), "https://api.openai.com/v1");
    assert_eq!(cfg(json!({"url": "http://h:8000/v1/"})).base_url("x").unwrap(), "http://h:8000/v1");
    assert_eq!(cfg(json!({"url": "gpu:8000/v1"})).base_url("x").unwrap(), "http://gpu:8000/v1");
    assert!(cfg(json!({"url": "http://"})).base_url("p.config").unwrap_err().to_string().contains("p.config.url"));
    assert!(cfg(json!({"timeout": -1})).timeout("p.config").unwrap_err().to_string().contains("p.config.timeout"));
    assert_eq!(cfg(json!({"models": ["a", " b ", "a"]})).models("x").unwrap(), Some(vec!["a".into(), "b".into()]));
    assert!(
        cfg(json!({"models": ["a", ""]})).models("p.config").unwrap_err().to_string().contains("p.config.models[1]")
    );
}

#[test]
fn descriptors_find_the_served_names_of_their_weights() {
    assert_eq!(weights_key("Llama3.1-8B-Instruct"), weights_key("meta-llama/Meta-Llama-3.1-8B-Instruct"));
    assert_eq!(weights_key("Llama3.2-3B-Instruct"), weights_key("meta-llama/Llama-3.2-3B-Instruct"));
    assert_ne!(weights_key("Llama3.1-8B-Instruct"), weights_key("meta-llama/Llama-3.1-8B"));
    let served: Vec<String> = ["gpt-4o-mini", "meta-llama/Llama-3.1-8B-Instruct"].map(String::from).to_vec();
    assert_eq!(pick(&model("x", "Llama3.1-8B-Instruct"), None, &served), Some(&served[1]));
    assert_eq!(pick(&model("gpt-4o-mini", "whatever"), None, &served), Some(&served[0]));
    assert_eq!(pick(&model("x", "Llama3.1-8B-Instruct"), Some("gpt-4o-mini"), &served), Some(&served[0]));
    assert_eq!(pick(&model("x", "Llama3.1-70B-Instruct"), None, &served), None);
}

#[test]
fn embeddings_come_back_in_input_order() {
    let answer: EmbeddingAnswer = serde_json::from_value(json!({"data": [
        {"index": 1, "embedding": [1.0]}, {"index": 0, "embedding": [0.0]}]}))
    .unwrap();
    assert_eq!(embeddings_in_order(answer, 2).unwrap().embeddings, vec![vec![0.0], vec![1.0]]);
    let short: EmbeddingAnswer = serde_json::from_value(json!({"data": [{"embedding": [1.0]}]})).unwrap();
    assert!(embeddings_in_order(short, 2).is_err());
    let twice: EmbeddingAnswer =
        serde_json::from_value(json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}))
            .unwrap();
    assert!(embeddings_in_order(twice, 2).is_err());
}

// ---------------------------------------------------------------- against a served fake

/// A request the fake saw: what it was for, its `Authorization` header, its body.
type Request = (String, Option<String>, Value);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

impl Seen {
    fn last(&self) -> Request {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

fn sse(events: &[Value]) -> Response {
    let frames: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    let body = frames.concat() + "data: [DONE]\n\n";
    ([("content-type", "text/event-stream")], body).into_response()
}

async fn chat(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.0.lock().unwrap().push(("chat".into(), auth, body.clone()));
    match body["model"].as_str() {
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        Some("missing") => {
            (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"message": "The model `missing` does not exist"}})))
                .into_response()
        }
        _ if body["stream"] == true => sse(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"ci"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Rome\"}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ]),
        _ => axum::Json(json!({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]}))
        .into_response(),
    }
}

async fn serve_fake(seen: Seen) -> String {
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async { axum::Json(json!({"object": "list", "data": [{"id": "m1"}, {"id": "slow"}]})) }),
        )
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/completions",
            post(|| async {
                sse(&[
                    json!({"choices": [{"text": "one", "finish_reason": null}]}),
                    json!({"choices": [{"text": " two", "finish_reason": "length"}]}),
                ])
            }),
        )
        .route(
            "/v1/embeddings",
            post(|| async { axum::Json(json!({"data": [{"index": 0, "embedding": [0.5, 0.25]}]})) }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

fn provider(url: &str, extra: &Value) -> OpenAiInference {
    let mut config = json!({"url": url, "timeout": 1});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    OpenAiInference::new("remote-openai", config.as_object().unwrap()).unwrap()
}

fn user(text: &str, stream: bool) -> ChatCompletionRequest {
    serde_json::from_value(json!({"model": "m1", "messages": [{"role": "user", "content": text}], "stream": stream}))
        .unwrap()
}

#[tokio::test]
async fn talks_to_an_openai_compatible_server() {
    let seen = Seen::default();
    let url = serve_fake(seen.clone()).await;
    let p = provider(&url, &json!({"api_key": null}));
    let listed: Vec<String> = p.list_models().await.unwrap().into_iter().map(|m| m.identifier).collect();
    assert_eq!(listed, ["m1", "slow"]);

    let m = model("m1", "m1");
    let ctx = RequestContext::from_header(Some(r#"{"openai_api_key": "sk-request"}"#));
    let reply = p.chat_completion(&m, user("hi", false), &ctx).await.unwrap();
    assert_eq!(reply.completion_message.content, InterleavedTextMedia::Text("hello".into()));
    assert_eq!(reply.completion_message.stop_reason, StopReason::EndOfTurn);
    let (_, auth, body) = seen.last();
    assert_eq!(auth.as_deref(), Some("Bearer sk-request"));
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    p.chat_completion(&m, user("hi", false), &RequestContext::default()).await.unwrap();
    assert_eq!(seen.last().1, None);

    let events: Vec<_> = p.chat_completion_stream(&m, user("hi", true), &ctx).await.unwrap().collect().await;
    let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(events.len(), 4, "{events:?}");
    let EventDelta::ToolCall(delta) = &events[2].event.delta else { unreachable!("{events:?}") };
    let ToolCallDeltaContent::Call(call) = &delta.content else { unreachable!("{delta:?}") };
    assert_eq!((call.call_id.as_str(), &call.arguments["city"]), ("c1", &json!("Rome")));
    assert_eq!(events[3].event.stop_reason, Some(StopReason::EndOfMessage));

    let req: CompletionRequest = serde_json::from_value(json!({"model": "m1", "content": "count"})).unwrap();
    let chunks: Vec<_> = p.completion_stream(&m, req, &ctx).await.unwrap().collect().await;
    let text: String = chunks.iter().map(|c| c.as_ref().unwrap().delta.clone()).collect();
    assert_eq!(text, "one two");
    assert_eq!(chunks.last().unwrap().as_ref().unwrap().stop_reason, Some(StopReason::OutOfTokens));

    let vectors = p.embeddings(&m, vec!["a".into()], &ctx).await.unwrap();
    assert_eq!(vectors.embeddings, vec![vec![0.5, 0.25]]);
}

#[tokio::test]
async fn registration_checks_the_served_names() {
    let seen = Seen::default();
    let url = serve_fake(seen).await;
    let p = provider(&url, &json!({}));
    p.register_model(&model("alias", "m1")).await.unwrap();
    assert_eq!(p.name_for(&model("alias", "ignored")).unwrap(), "m1");
    let e = p.register_model(&model("x", "absent")).await.unwrap_err().to_string();
    assert!(e.contains("absent") && e.contains("m1, slow") && e.contains("remote-openai"), "{e}");
    // A configured list is taken as it is, without asking the server.
    let listed = provider("http://127.0.0.1:9/v1", &json!({"models": ["only"]})).list_models().await.unwrap();
    assert_eq!(listed[0].metadata[MODEL_KEY], "only");
}

#[tokio::test]
async fn failures_name_the_provider_and_never_hang() {
    let seen = Seen::default();
    let url = serve_fake(seen).await;
    let p = provider(&url, &json!({}));
    let ctx = RequestContext::default();

    let started = Instant::now();
    let e = p.chat_completion(&model("slow", "slow"), user("x", false), &ctx).await.unwrap_err();
    assert_eq!(e.status_code(), 504, "{e}");
    assert!(e.to_string().contains("remote-openai"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(4));

    let e = p.chat_completion(&model("missing", "missing"), user("x", false), &ctx).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("does not exist") && e.to_string().contains("remote-openai"), "{e}");

    // Nothing listens on port 9.
    let down = provider("http://127.0.0.1:9/v1", &json!({}));
    assert!(down.list_models().await.unwrap().is_empty());
    let e = down.chat_completion(&model("m", "m"), user("x", true), &ctx).await.unwrap_err();
    assert_eq!(e.status_code(), 503, "{e}");
    assert!(e.to_string().contains("remote-openai"), "{e}");
    let e = down.register_model(&model("m", "m")).await.unwrap_err();
    assert_eq!(e.status_code(), 503, "{e}");
}

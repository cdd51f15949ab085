//! `remote::together`, `remote::fireworks` and `remote::databricks` against one fake service
//! served in-process, speaking the `OpenAI`-style `/completions` API each of them documents:
//! keys, model names, the rendered Llama 3 prompt, streaming, tool calls, logprobs and errors.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![allow(clippy::float_cmp, reason = "the scores are copied through, never computed")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use llama_stack_rs::config::Api;
use llama_stack_rs::error::Error;
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::registry::{self, BuildArgs};
use llama_stack_rs::providers::{ProviderImpl, RequestContext};
use llama_stack_rs::types::common::{JsonObject, StopReason, ToolName};
use llama_stack_rs::types::inference::{EventDelta, ToolCallDeltaContent};
use llama_stack_rs::types::models::ModelDefWithProvider;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Fake {
    /// (path, authorization header, body) of every request.
    seen: Arc<Mutex<Vec<(String, String, Value)>>>,
}

impl Fake {
    fn last(&self) -> (String, String, Value) {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

fn sse(events: &[Value]) -> Response {
    let mut body = String::new();
    for e in events {
        body.push_str("data: ");
        body.push_str(&e.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], Body::from(body)).into_response()
}

/// What the fake answers: the reply text depends on the prompt's last user words.
async fn completions(
    State(fake): State<Fake>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    fake.seen.lock().unwrap().push((uri.path().to_owned(), auth.clone(), body.clone()));
    if auth != "Bearer good-key" {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Invalid API key"}}))).into_response();
    }
    let model = body["model"].as_str().unwrap_or("");
    if model.contains("missing") {
        return (StatusCode::NOT_FOUND, Json(json!({"error": {"message": format!("model {model} not found")}})))
            .into_response();
    }
    let prompt = body["prompt"].as_str().unwrap_or("");
    if prompt.contains("busy") {
        return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"message": "rate limited"}}))).into_response();
    }
    if prompt.contains("slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let reply: Vec<&str> = if prompt.contains("weather") {
        vec!["<|python_tag|>", "brave_search.call(query=\"weather", " in Paris\")"]
    } else {
        vec!["Hello", " there", "!"]
    };
    let logprobs = body.get("logprobs").and_then(Value::as_i64);
    let scored = |piece: &str| {
        logprobs
            .map(|_| json!({"tokens": [piece], "token_logprobs": [-0.25], "top_logprobs": [{piece: -0.25, "x": -3.0}]}))
    };
    if body["stream"] == json!(true) {
        let mut events: Vec<Value> =
            reply.iter().map(|p| json!({"choices": [{"index": 0, "text": p, "logprobs": scored(p)}]})).collect();
        events.push(json!({"choices": [{"index": 0, "text": "", "finish_reason": "eos"}]}));
        return sse(&events);
    }
    let text: String = reply.concat();
    let lp = logprobs.map(|_| {
        json!({"tokens": reply, "token_logprobs": reply.iter().map(|_| -0.25).collect::<Vec<_>>(),
               "top_logprobs": reply.iter().map(|p| json!({*p: -0.25})).collect::<Vec<_>>()})
    });
    Json(json!({"id": "cmpl-1", "object": "text_completion", "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": lp}]}))
    .into_response()
}

async fn start_fake() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/v1/completions", post(completions))
        .route("/inference/v1/completions", post(completions))
        .route("/serving-endpoints/completions", post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

async fn build(provider_type: &str, config: Value) -> Arc<dyn InferenceProvider> {
    let spec = registry::find(Api::Inference, provider_type, "providers.inference[0]").unwrap();
    let config = spec.check_config(config.as_object().unwrap(), "providers.inference[0].config").unwrap();
    let ProviderImpl::Inference(p) = (spec.build.unwrap())(BuildArgs::standalone("hosted0", config)).await.unwrap()
    else {
        unreachable!("an inference provider type")
    };
    p
}

fn model(llama: &str) -> ModelDefWithProvider {
    ModelDefWithProvider {
        identifier: llama.into(),
        llama_model: llama.into(),
        metadata: JsonObject::new(),
        provider_id: "hosted0".into(),
    }
}

fn chat(text: &str, extra: &Value) -> llama_stack_rs::types::inference::ChatCompletionRequest {
    let mut v = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn completion(text: &str, extra: &Value) -> llama_stack_rs::types::inference::CompletionRequest {
    let mut v = json!({"model": "m", "content": text});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn no_ctx() -> RequestContext {
    RequestContext::default()
}

#[tokio::test]
async fn together_chat_sends_the_llama_prompt_and_maps_the_model() {
    let (url, fake) = start_fake().await;
    let p = build("remote::together", json!({"url": format!("{url}/v1"), "api_key": "good-key"})).await;
    let listed = p.list_models().await.unwrap();
    assert!(listed.iter().any(|m| m.identifier == "Llama3.1-8B-Instruct"));
    let r = p
        .chat_completion(
            &model("Llama3.1-8B-Instruct"),
            chat("say hi", &json!({"sampling_params": {"max_tokens": 9}})),
            &no_ctx(),
        )
        .await
        .unwrap();
    assert_eq!(r.completion_message.content.as_text(""), "Hello there!");
    assert_eq!(r.completion_message.stop_reason, StopReason::EndOfTurn);
    let (path, auth, body) = fake.last();
    assert_eq!((path.as_str(), auth.as_str()), ("/v1/completions", "Bearer good-key"));
    assert_eq!(body["model"], "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo");
    assert_eq!(body["max_tokens"], 9);
    let prompt = body["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>"), "{prompt}");
    assert!(prompt.ends_with("say hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "{prompt}");
}

#[tokio::test]
async fn tool_calls_are_parsed_whole_and_streamed() {
    let (url, _fake) = start_fake().await;
    let p = build("remote::together", json!({"url": format!("{url}/v1"), "api_key": "good-key"})).await;
    let tools = json!({"tools": [{"tool_name": "brave_search"}]});
    let r = p.chat_completion(&model("Llama3.1-8B-Instruct"), chat("weather?", &tools), &no_ctx()).await.unwrap();
    let call = &r.completion_message.tool_calls[0];
    assert_eq!(call.tool_name, ToolName::from("brave_search"));
    assert_eq!(call.arguments["query"], "weather in Paris");

    let events: Vec<_> = p
        .chat_completion_stream(&model("Llama3.1-8B-Instruct"), chat("weather?", &tools), &no_ctx())
        .await
        .unwrap()
        .map(|c| c.unwrap().event)
        .collect()
        .await;
    assert_eq!(events.first().unwrap().event_type.to_string(), "start");
    assert_eq!(events.last().unwrap().event_type.to_string(), "complete");
    let parsed = events.iter().find_map(|e| match &e.delta {
        EventDelta::ToolCall(d) => match &d.content {
            ToolCallDeltaContent::Call(c) => Some(c.clone()),
            ToolCallDeltaContent::Text(_) => None,
        },
        EventDelta::Text(_) => None,
    });
    assert_eq!(parsed.unwrap().arguments["query"], "weather in Paris");
}

#[tokio::test]
async fn fireworks_strips_bos_and_limits_tokens_by_default() {
    let (url, fake) = start_fake().await;
    let p = build("remote::fireworks", json!({"url": format!("{url}/inference"), "api_key": "good-key"})).await;
    let r = p.completion(&model("Llama3.2-3B-Instruct"), completion("Once upon", &json!({})), &no_ctx()).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(""), "Hello there!");
    let (path, _, body) = fake.last();
    assert_eq!(path, "/inference/v1/completions");
    assert_eq!(body["model"], "accounts/fireworks/models/llama-v3p2-3b-instruct");
    assert_eq!(body["prompt"], "Once upon");
    assert_eq!(body["max_tokens"], 512);
}

#[tokio::test]
async fn databricks_streams_completions_with_logprobs() {
    let (url, fake) = start_fake().await;
    let p =
        build("remote::databricks", json!({"url": format!("{url}/serving-endpoints"), "api_token": "good-key"})).await;
    let req = completion("Once upon", &json!({"stream": true, "logprobs": {"top_k": 2}}));
    let chunks: Vec<_> = p
        .completion_stream(&model("Llama3.1-70B-Instruct"), req, &no_ctx())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let text: String = chunks.iter().map(|c| c.delta.as_str()).collect();
    assert_eq!(text, "Hello there!");
    assert_eq!(chunks.last().unwrap().stop_reason, Some(StopReason::EndOfTurn));
    let scores = chunks[0].logprobs.as_ref().unwrap();
    assert_eq!(scores[0].logprobs_by_token["Hello"], -0.25);
    assert_eq!(scores[0].logprobs_by_token["x"], -3.0);
    let (_, _, body) = fake.last();
    assert_eq!(
        (body["model"].clone(), body["logprobs"].clone()),
        (json!("databricks-meta-llama-3-1-70b-instruct"), json!(2))
    );

    let whole = p
        .chat_completion(&model("Llama3.1-70B-Instruct"), chat("hi", &json!({"logprobs": {}})), &no_ctx())
        .await
        .unwrap();
    assert_eq!(whole.logprobs.unwrap().len(), 3);
}

#[tokio::test]
async fn keys_come_from_the_config_or_the_request() {
    let (url, fake) = start_fake().await;
    let p = build("remote::together", json!({"url": format!("{url}/v1")})).await;
    let m = model("Llama3.1-8B-Instruct");
    let e = p.chat_completion(&m, chat("hi", &json!({})), &no_ctx()).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("together_api_key"), "{e}");
    let ctx = RequestContext::from_header(Some(r#"{"together_api_key": "good-key"}"#));
    p.chat_completion(&m, chat("hi", &json!({})), &ctx).await.unwrap();
    assert_eq!(fake.last().1, "Bearer good-key");
    let bad = RequestContext::from_header(Some(r#"{"together_api_key": "wrong"}"#));
    let e = p.chat_completion(&m, chat("hi", &json!({})), &bad).await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e:?}");
}

#[tokio::test]
async fn unknown_models_and_backend_errors_are_clear() {
    let (url, _fake) = start_fake().await;
    let p = build("remote::together", json!({"url": format!("{url}/v1"), "api_key": "good-key", "timeout": 1})).await;
    let e = p.register_model(&model("Llama3.2-1B-Instruct")).await.unwrap_err().to_string();
    assert!(e.contains("Llama3.2-1B-Instruct") && e.contains("Llama3.1-8B-Instruct"), "{e}");
    let mut named = model("my-llama");
    named.metadata.insert("provider_model".into(), json!("missing/model"));
    p.register_model(&named).await.unwrap();
    let e = p.chat_completion(&named, chat("hi", &json!({})), &no_ctx()).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("missing/model"), "{e}");
    let m = model("Llama3.1-8B-Instruct");
    let e = p.chat_completion(&m, chat("busy", &json!({})), &no_ctx()).await.unwrap_err();
    assert_eq!(e.status_code(), 503);
    let e = p.chat_completion(&m, chat("slow", &json!({})), &no_ctx()).await.unwrap_err();
    assert_eq!(e.status_code(), 504);
    assert!(e.to_string().contains("hosted0"), "{e}");
    let down = build("remote::together", json!({"url": "http://127.0.0.1:9/v1", "api_key": "k"})).await;
    let e = down.chat_completion(&m, chat("hi", &json!({})), &no_ctx()).await.unwrap_err();
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("hosted0") && e.to_string().contains("Together"), "{e}");
}

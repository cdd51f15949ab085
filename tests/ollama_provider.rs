//! The `remote::ollama` provider against a fake Ollama served in-process: model listing and
//! registration, chat (with tools), streaming, completion, embeddings, and error mapping.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{HungUp, Seen, chat_req, err_of, weather_tool};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use llama_stack_rs::config::Api;
use llama_stack_rs::error::Error;
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::registry::{self, BuildArgs};
use llama_stack_rs::providers::{ProviderImpl, RequestContext};
use llama_stack_rs::types::common::{JsonObject, StopReason, ToolName};
use llama_stack_rs::types::inference::{ChatCompletionResponseStreamChunk, EventDelta, ToolCallDeltaContent};
use llama_stack_rs::types::models::ModelDefWithProvider;
use serde_json::{Value, json};

const TAGS: &[&str] = &[
    "llama3.1:8b-instruct-fp16",
    "llama3.1:latest",
    "llama3.2:3b",
    "xe/llamaguard3:latest",
    "nomic-embed-text:latest",
    "slow:latest",
    "stall:latest",
    "endless:latest",
    "broken:latest",
    "picky:latest",
];

// ---------------------------------------------------------------- the fake Ollama

#[derive(Clone, Default)]
struct Fake {
    seen: Seen,
    /// Raised when the body of an `endless` stream is dropped, i.e. the client went away.
    hung_up: HungUp,
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

/// NDJSON written a few bytes at a time, so lines arrive split across chunks.
fn ndjson(lines: &[Value]) -> Response {
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    let pieces: Vec<Vec<u8>> = text.as_bytes().chunks(7).map(<[u8]>::to_vec).collect();
    let body = stream::iter(pieces).then(|p| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, std::io::Error>(p)
    });
    Response::builder().header("content-type", "application/x-ndjson").body(Body::from_stream(body)).unwrap()
}

/// Checks the model and plays the special ones; `None` means "answer normally".
async fn special(fake: &Fake, body: &Value, piece: fn(&str, bool) -> Value) -> Option<Response> {
    let model = body["model"].as_str().unwrap_or_default();
    if !TAGS.contains(&model) {
        return Some(error(StatusCode::NOT_FOUND, &format!("model \"{model}\" not found, try pulling it first")));
    }
    match model {
        "broken:latest" => Some(error(StatusCode::INTERNAL_SERVER_ERROR, "llama runner process has terminated")),
        "picky:latest" => Some(error(StatusCode::BAD_REQUEST, "picky:latest does not support tools")),
        "slow:latest" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            None
        }
        "stall:latest" => {
            let first = format!("{}\n", piece("first", false));
            let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(stream::once(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(String::new())
            }));
            Some(Response::builder().body(Body::from_stream(body)).unwrap())
        }
        "endless:latest" => {
            let guard = fake.hung_up.guard();
            let body = stream::unfold(guard, move |guard| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((Ok::<_, std::io::Error>(format!("{}\n", piece(" more", false))), guard))
            });
            Some(Response::builder().body(Body::from_stream(body)).unwrap())
        }
        _ => None,
    }
}

/// Splits text into word pieces that keep their leading space.
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, w) in text.split(' ').enumerate() {
        out.push(if i == 0 { w.to_owned() } else { format!(" {w}") });
    }
    out
}

/// The reply text, cut to `num_predict` words; the flag says whether it was cut.
fn limited(text: &str, body: &Value) -> (Vec<String>, &'static str) {
    let all = words(text);
    match body["options"]["num_predict"].as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n < all.len() => (all[..n].to_vec(), "length"),
        _ => (all, "stop"),
    }
}

fn chat_piece(text: &str, done: bool) -> Value {
    let mut v = json!({"model": "m", "created_at": "2024-10-10T00:00:00Z",
                       "message": {"role": "assistant", "content": text}, "done": done});
    if done {
        v["done_reason"] = json!("stop");
    }
    v
}

fn generate_piece(text: &str, done: bool) -> Value {
    json!({"model": "m", "created_at": "2024-10-10T00:00:00Z", "response": text, "done": done})
}

async fn tags() -> Json<Value> {
    let models: Vec<Value> = TAGS.iter().map(|t| json!({"name": t, "model": t, "size": 1, "digest": "0"})).collect();
    Json(json!({"models": models}))
}

async fn chat(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.seen.record("/api/chat", &body);
    if let Some(r) = special(&fake, &body, chat_piece).await {
        return r;
    }
    let stream = body["stream"].as_bool().unwrap_or(true);
    let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or(Value::Null);
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    if !tools.is_empty() && last["role"] == "user" {
        let name = tools[0]["function"]["name"].clone();
        let message = json!({"role": "assistant", "content": "",
                             "tool_calls": [{"function": {"name": name, "arguments": {"city": "Paris"}}}]});
        if !stream {
            return Json(json!({"model": body["model"], "message": message, "done": true, "done_reason": "stop"}))
                .into_response();
        }
        return ndjson(&[json!({"message": message, "done": false}), chat_piece("", true)]);
    }
    let text = if last["role"] == "tool" {
        format!(
            "The {} tool said {}",
            last["tool_name"].as_str().unwrap_or("?"),
            last["content"].as_str().unwrap_or("")
        )
    } else {
        format!("echo: {}", last["content"].as_str().unwrap_or(""))
    };
    let (pieces, reason) = limited(&text, &body);
    if !stream {
        let message = json!({"role": "assistant", "content": pieces.concat()});
        return Json(json!({"model": body["model"], "message": message, "done": true, "done_reason": reason}))
            .into_response();
    }
    let mut lines: Vec<Value> = pieces.iter().map(|p| chat_piece(p, false)).collect();
    let mut last = chat_piece("", true);
    last["done_reason"] = json!(reason);
    lines.push(last);
    ndjson(&lines)
}

async fn generate(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.seen.record("/api/generate", &body);
    if let Some(r) = special(&fake, &body, generate_piece).await {
        return r;
    }
    let text = format!("echo: {}", body["prompt"].as_str().unwrap_or(""));
    let (pieces, reason) = limited(&text, &body);
    if !body["stream"].as_bool().unwrap_or(true) {
        return Json(json!({"model": body["model"], "response": pieces.concat(), "done": true, "done_reason": reason}))
            .into_response();
    }
    let mut lines: Vec<Value> = pieces.iter().map(|p| generate_piece(p, false)).collect();
    let mut last = generate_piece("", true);
    last["done_reason"] = json!(reason);
    lines.push(last);
    ndjson(&lines)
}

async fn embed(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.seen.record("/api/embed", &body);
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    let vectors: Vec<Value> = inputs.iter().map(|i| json!([i.as_str().map_or(0, str::len), 0.5])).collect();
    Json(json!({"model": body["model"], "embeddings": vectors})).into_response()
}

async fn serve_fake() -> (String, Fake) {
    serve_fake_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
}

fn serve_fake_on(listener: tokio::net::TcpListener) -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/api/tags", get(tags))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .route("/api/embed", post(embed))
        .with_state(fake.clone());
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

// ---------------------------------------------------------------- helpers

async fn provider_at(url: &str, timeout: f64) -> Arc<dyn InferenceProvider> {
    let spec = registry::find(Api::Inference, "remote::ollama", "providers.inference[0]").unwrap();
    let mut raw = JsonObject::new();
    raw.insert("url".into(), json!(url));
    raw.insert("timeout".into(), json!(timeout));
    let config = spec.check_config(&raw, "providers.inference[0].config").unwrap();
    let build = spec.build.unwrap();
    let ProviderImpl::Inference(p) = build(BuildArgs::standalone("ollama0", config)).await.unwrap() else {
        unreachable!("remote::ollama builds an inference provider")
    };
    p
}

fn model(id: &str, llama: &str, tag: Option<&str>) -> ModelDefWithProvider {
    let mut metadata = JsonObject::new();
    if let Some(t) = tag {
        metadata.insert("ollama_model".into(), json!(t));
    }
    ModelDefWithProvider { identifier: id.into(), llama_model: llama.into(), metadata, provider_id: "ollama0".into() }
}

fn tagged(tag: &str) -> ModelDefWithProvider {
    model(tag, tag, Some(tag))
}

fn hello(model: &str) -> llama_stack_rs::types::inference::ChatCompletionRequest {
    chat_req(json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
}

async fn collect(
    s: BoxStream<'static, Result<ChatCompletionResponseStreamChunk, Error>>,
) -> Vec<Result<ChatCompletionResponseStreamChunk, Error>> {
    s.collect().await
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn lists_pulled_models_under_llama_ids() {
    let (url, _fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let listed = p.list_models().await.unwrap();
    let find = |id: &str| listed.iter().find(|m| m.identifier == id).cloned();
    let m = find("Llama3.1-8B-Instruct").unwrap();
    assert_eq!(
        (m.llama_model.as_str(), &m.metadata["ollama_model"]),
        ("Llama3.1-8B-Instruct", &json!("llama3.1:8b-instruct-fp16"))
    );
    // A second tag of the same weights keeps its own name.
    let m = find("llama3.1:latest").unwrap();
    assert_eq!(m.llama_model, "Llama3.1-8B-Instruct");
    assert_eq!(find("Llama3.2-3B-Instruct").unwrap().metadata["ollama_model"], "llama3.2:3b");
    assert_eq!(find("Llama-Guard-3-8B").unwrap().metadata["ollama_model"], "xe/llamaguard3:latest");
    let m = find("nomic-embed-text:latest").unwrap();
    assert_eq!(m.llama_model, "nomic-embed-text:latest");
    assert_eq!(listed.len(), TAGS.len());
}

#[tokio::test]
async fn registration_checks_the_tag_is_pulled() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let ctx = RequestContext::default();
    p.register_model(&model("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", None)).await.unwrap();
    p.register_model(&tagged("nomic-embed-text:latest")).await.unwrap();
    // Only the short tag is pulled: registration finds it and requests use it.
    let short = model("small", "Llama3.2-3B-Instruct", None);
    p.register_model(&short).await.unwrap();
    p.chat_completion(&short, hello("small"), &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/api/chat")["model"], "llama3.2:3b");

    let e = err_of(p.register_model(&model("big", "Llama3.1-70B-Instruct", None)).await);
    let text = e.to_string();
    assert_eq!(e.status_code(), 400);
    assert!(
        text.contains("llama3.1:70b-instruct-fp16") && text.contains("ollama pull llama3.1:70b-instruct-fp16"),
        "{text}"
    );
    let e = err_of(p.register_model(&model("x", "Llama3.1-8B-Instruct", Some("mistral:7b"))).await);
    assert!(e.to_string().contains("ollama pull mistral:7b"), "{e}");
}

#[tokio::test]
async fn chat_sends_messages_and_options() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let m = model("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", Some("llama3.1:8b-instruct-fp16"));
    let req = chat_req(json!({
        "model": "Llama3.1-8B-Instruct",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": ["what is", "this"], "context": "some context"},
        ],
        "sampling_params": {"strategy": "top_p", "temperature": 0.5, "top_p": 0.9, "top_k": 3,
                            "max_tokens": 100, "repetition_penalty": 1.2},
    }));
    let r = p.chat_completion(&m, req, &RequestContext::default()).await.unwrap();
    let sent = fake.seen.last("/api/chat");
    assert_eq!(sent["model"], "llama3.1:8b-instruct-fp16");
    assert_eq!(sent["stream"], false);
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is this\n\nsome context"},
        ])
    );
    assert_eq!(sent["options"], json!({"temperature": 0.5, "top_p": 0.9, "num_predict": 100, "repeat_penalty": 1.2}));
    assert!(sent.get("tools").is_none());
    let msg = r.completion_message;
    assert_eq!(msg.content.as_text(" "), "echo: what is this\n\nsome context");
    assert_eq!(msg.stop_reason, StopReason::EndOfTurn);
    assert!(msg.tool_calls.is_empty() && r.logprobs.is_none());

    let mut req = hello("Llama3.1-8B-Instruct");
    req.sampling_params = Some(serde_json::from_value(json!({"max_tokens": 2})).unwrap());
    let r = p.chat_completion(&m, req, &RequestContext::default()).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(" "), "echo: hello");
    assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);
}

#[tokio::test]
async fn chat_tool_call_round_trip() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let ctx = RequestContext::default();
    let m = tagged("llama3.1:latest");
    let ask = json!({"role": "user", "content": "weather in Paris?"});
    let req = chat_req(json!({"model": "m", "messages": [ask], "tools": [weather_tool()]}));
    let r = p.chat_completion(&m, req, &ctx).await.unwrap();
    let sent = fake.seen.last("/api/chat");
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                       "required": ["city"]}}}])
    );
    let msg = r.completion_message;
    assert_eq!(msg.stop_reason, StopReason::EndOfMessage);
    assert_eq!(msg.tool_calls.len(), 1);
    let call = msg.tool_calls[0].clone();
    assert_eq!(call.tool_name, ToolName::Custom("get_weather".into()));
    assert_eq!(call.arguments["city"], "Paris");
    assert!(!call.call_id.is_empty());

    // Send the call and its result back, as an agent loop does.
    let assistant = serde_json::to_value(&msg).unwrap();
    let result =
        json!({"role": "ipython", "call_id": call.call_id, "tool_name": "get_weather", "content": "sunny, 21C"});
    let req = chat_req(json!({"model": "m", "messages": [ask, assistant, result], "tools": [weather_tool()]}));
    let r = p.chat_completion(&m, req, &ctx).await.unwrap();
    let sent = fake.seen.last("/api/chat");
    assert_eq!(
        sent["messages"][1]["tool_calls"],
        json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])
    );
    assert_eq!(sent["messages"][2], json!({"role": "tool", "tool_name": "get_weather", "content": "sunny, 21C"}));
    assert_eq!(r.completion_message.content.as_text(" "), "The get_weather tool said sunny, 21C");
    assert_eq!(r.completion_message.stop_reason, StopReason::EndOfTurn);
}

#[tokio::test]
async fn chat_stream_event_sequence() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let ctx = RequestContext::default();
    let m = tagged("llama3.2:3b");
    let events = collect(p.chat_completion_stream(&m, hello("m"), &ctx).await.unwrap()).await;
    assert_eq!(fake.seen.last("/api/chat")["stream"], true);
    let events: Vec<ChatCompletionResponseStreamChunk> = events.into_iter().map(Result::unwrap).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    assert_eq!(kinds, ["start", "progress", "progress", "progress", "complete"]);
    let text: String = events
        .iter()
        .map(|e| match &e.event.delta {
            EventDelta::Text(t) => t.clone(),
            EventDelta::ToolCall(_) => unreachable!("no tools were offered"),
        })
        .collect();
    assert_eq!(text, "echo: hello there");
    assert_eq!(events[0].event.delta, EventDelta::Text(String::new()));
    assert_eq!(events[4].event.stop_reason, Some(StopReason::EndOfTurn));

    let req = chat_req(
        json!({"model": "m", "messages": [{"role": "user", "content": "weather?"}], "tools": [weather_tool()], "stream": true}),
    );
    let events = collect(p.chat_completion_stream(&m, req, &ctx).await.unwrap()).await;
    let events: Vec<ChatCompletionResponseStreamChunk> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    let EventDelta::ToolCall(delta) = &events[1].event.delta else { unreachable!("{events:?}") };
    assert_eq!(delta.parse_status.as_str(), "success");
    let ToolCallDeltaContent::Call(call) = &delta.content else { unreachable!("{delta:?}") };
    assert_eq!((call.tool_name.as_str(), &call.arguments["city"]), ("get_weather", &json!("Paris")));
    assert_eq!(events[2].event.stop_reason, Some(StopReason::EndOfMessage));
}

#[tokio::test]
async fn completion_plain_and_streamed() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let ctx = RequestContext::default();
    let m = tagged("llama3.2:3b");
    let req = serde_json::from_value(
        json!({"model": "m", "content": "once upon a time", "sampling_params": {"max_tokens": 3}}),
    )
    .unwrap();
    let r = p.completion(&m, req, &ctx).await.unwrap();
    let sent = fake.seen.last("/api/generate");
    assert_eq!(
        (&sent["prompt"], &sent["raw"], &sent["stream"]),
        (&json!("once upon a time"), &json!(false), &json!(false))
    );
    // The default strategy is greedy, which is sent as temperature 0.
    assert_eq!(sent["options"], json!({"temperature": 0.0, "num_predict": 3}));
    assert_eq!(r.completion_message.content.as_text(" "), "echo: once upon");
    assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);

    let req = serde_json::from_value(json!({"model": "m", "content": ["a", "b"], "stream": true})).unwrap();
    let chunks: Vec<_> = p.completion_stream(&m, req, &ctx).await.unwrap().collect().await;
    let chunks: Vec<_> = chunks.into_iter().map(Result::unwrap).collect();
    let text: String = chunks.iter().map(|c| c.delta.as_str()).collect();
    assert_eq!(text, "echo: a b");
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.stop_reason.is_none()));
    assert_eq!(chunks.last().unwrap().stop_reason, Some(StopReason::EndOfTurn));
}

#[tokio::test]
async fn embeddings_one_vector_per_input() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let m = tagged("nomic-embed-text:latest");
    let r = p.embeddings(&m, vec!["abc".into(), "hello".into()], &RequestContext::default()).await.unwrap();
    assert_eq!(fake.seen.last("/api/embed"), json!({"model": "nomic-embed-text:latest", "input": ["abc", "hello"]}));
    assert_eq!(r.embeddings, vec![vec![3.0, 0.5], vec![5.0, 0.5]]);
}

#[tokio::test]
async fn ollama_errors_map_to_statuses() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let ctx = RequestContext::default();

    let e = err_of(p.chat_completion(&tagged("mistral:7b"), hello("m"), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("`mistral:7b`") && e.to_string().contains("ollama pull mistral:7b"), "{e}");

    let e = err_of(p.chat_completion_stream(&tagged("picky:latest"), hello("m"), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("does not support tools"), "{e}");

    let e = err_of(
        p.completion(
            &tagged("broken:latest"),
            serde_json::from_value(json!({"model": "m", "content": "x"})).unwrap(),
            &ctx,
        )
        .await,
    );
    assert_eq!(e.status_code(), 502);
    assert!(
        matches!(&e, Error::Upstream { provider, message } if provider == "ollama0" && message.contains("terminated")),
        "{e}"
    );

    // A linked image is refused before anything is sent.
    let before = fake.seen.count();
    let req = chat_req(
        json!({"model": "m", "messages": [{"role": "user", "content": ["see", {"image": {"uri": "https://x.test/cat.png"}}]}]}),
    );
    let e = err_of(p.chat_completion(&tagged("llama3.2:3b"), req, &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("https://x.test/cat.png"), "{e}");
    assert_eq!(fake.seen.count(), before);
    let req = chat_req(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"image": {"uri": "data:image/png;base64,aGk="}}, "look"]}]}),
    );
    p.chat_completion(&tagged("llama3.2:3b"), req, &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/api/chat")["messages"][0]["images"], json!(["aGk="]));
}

#[tokio::test]
async fn a_stopped_ollama_is_unavailable_and_does_not_block_startup() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = Instant::now();
    let p = provider_at(&url, 300.0).await;
    assert!(p.list_models().await.unwrap().is_empty());
    let e = err_of(p.chat_completion(&tagged("llama3.2:3b"), hello("m"), &RequestContext::default()).await);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(e.status_code(), 503);
    assert!(
        matches!(&e, Error::Unavailable { provider, message } if provider == "ollama0" && message.contains(&url)),
        "{e}"
    );
    let e = err_of(p.register_model(&model("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", None)).await);
    assert_eq!(e.status_code(), 503);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (url, _fake) = serve_fake().await;
    let p = provider_at(&url, 1.0).await;
    let ctx = RequestContext::default();
    let started = Instant::now();
    let e = err_of(p.chat_completion(&tagged("slow:latest"), hello("m"), &ctx).await);
    assert_eq!(e.status_code(), 504);
    assert!(e.to_string().contains("ollama0"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(2900));

    // Once the stream has begun, the timeout arrives as an error item.
    let events = collect(p.chat_completion_stream(&tagged("stall:latest"), hello("m"), &ctx).await.unwrap()).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[1].as_ref().is_ok_and(|e| e.event.delta == EventDelta::Text("first".into())));
    assert!(matches!(&events[2], Err(Error::Timeout(_))), "{events:?}");
}

#[tokio::test]
async fn dropping_the_stream_hangs_up_on_ollama() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, 30.0).await;
    let mut s =
        p.chat_completion_stream(&tagged("endless:latest"), hello("m"), &RequestContext::default()).await.unwrap();
    for _ in 0..4 {
        s.next().await.unwrap().unwrap();
    }
    assert!(!fake.hung_up.happened());
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fake.hung_up.happened() {
        assert!(Instant::now() < deadline, "the fake kept streaming after the client dropped the stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_ollama_started_after_the_stack_shows_its_models_in_the_list() {
    // A port nobody listens on yet.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "version: '2'\nimage_name: late\napis: [inference]\nproviders:\n  inference:\n  - provider_id: ollama0\n    \
         provider_type: remote::ollama\n    config: {{url: 'http://{addr}'}}\nmetadata_store:\n  type: sqlite\n  \
         db_path: {}/registry.db\n",
        dir.path().display()
    );
    let config = llama_stack_rs::config::StackRunConfig::from_yaml(&yaml, "test").unwrap();
    let stack = llama_stack_rs::stack::Stack::build(config).await.unwrap();
    assert!(stack.models.list().await.unwrap().is_empty());

    // Ollama comes up; listing alone (no request missing first) shows its models once the
    // re-listing interval has passed.
    let (_url, _fake) = serve_fake_on(tokio::net::TcpListener::bind(addr).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids = loop {
        let ids: Vec<String> = stack.models.list().await.unwrap().into_iter().map(|m| m.identifier).collect();
        if !ids.is_empty() || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ids.iter().any(|id| id == "Llama3.1-8B-Instruct"), "{ids:?}");
    assert!(stack.models.resolve("Llama3.1-8B-Instruct").await.is_ok());
}

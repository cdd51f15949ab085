//! The `remote::tgi`, `remote::hf::serverless` and `remote::hf::endpoint` providers against a fake
//! TGI, a fake serverless Inference API and a fake Inference Endpoints API, all served in-process:
//! the served model and registration, chat (plain and tool calls), streaming, completion, log
//! probabilities, the reply's token budget, and error mapping.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use common::{HungUp, Seen, err_of, kinds};
use futures::StreamExt;
use futures::stream;
use llama_stack_rs::config::Api;
use llama_stack_rs::error::Error;
use llama_stack_rs::prompt::Llama3Tokenizer;
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::registry::{self, BuildArgs};
use llama_stack_rs::providers::{ProviderImpl, RequestContext};
use llama_stack_rs::types::common::{BuiltinTool, JsonObject, StopReason, ToolName};
use llama_stack_rs::types::inference::{ChatCompletionRequest, CompletionRequest, EventDelta, ToolCallDeltaContent};
use llama_stack_rs::types::models::ModelDefWithProvider;
use serde_json::{Value, json};

const REPO: &str = "meta-llama/Meta-Llama-3.1-8B-Instruct";
const LLAMA: &str = "Llama3.1-8B-Instruct";

// ---------------------------------------------------------------- the fakes

#[derive(Clone)]
struct Fake {
    model_id: String,
    max_total_tokens: u64,
    /// Requests to the generate routes: (path, body).
    seen: Seen,
    /// Requests to the endpoints API: (path, Authorization header).
    lookups: Arc<Mutex<Vec<(String, String)>>>,
    /// Where the fake endpoints say they serve (this server).
    base: Arc<Mutex<String>>,
    /// Look-ups of the `waking` endpoint so far; it runs from the second on.
    waking: Arc<AtomicUsize>,
    /// Raised when the body of an endless stream is dropped, i.e. the client went away.
    hung_up: HungUp,
}

fn tgi_error(status: StatusCode, message: &str, error_type: &str) -> Response {
    (status, Json(json!({"error": message, "error_type": error_type}))).into_response()
}

/// What the user asked: the last user message of a chat prompt, or a completion prompt's text.
fn asked(inputs: &str) -> String {
    const USER: &str = "<|start_header_id|>user<|end_header_id|>\n\n";
    match inputs.rfind(USER) {
        Some(i) => inputs[i + USER.len()..].split("<|eot_id|>").next().unwrap_or_default().to_owned(),
        None => inputs.trim_start_matches("<|begin_of_text|>").to_owned(),
    }
}

/// The tokens of the reply to `inputs`, as TGI would generate them, and the finish reason.
fn reply_tokens(inputs: &str, params: &Value) -> (Vec<(String, bool)>, &'static str) {
    let question = asked(inputs);
    if question.contains("weather") {
        let call =
            ["<|python_tag|>", "brave_search", ".call", "(query", "=\"", "weather in Paris", "\")", "<|eom_id|>"];
        let special = |t: &str| t.starts_with("<|");
        return (call.iter().map(|t| ((*t).to_owned(), special(t))).collect(), "eos_token");
    }
    let mut words: Vec<(String, bool)> = Vec::new();
    for (i, w) in format!("You said: {question}").split(' ').enumerate() {
        words.push((if i == 0 { w.to_owned() } else { format!(" {w}") }, false));
    }
    match params["max_new_tokens"].as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n <= words.len() => {
            words.truncate(n);
            (words, "length")
        }
        _ => {
            words.push(("<|eot_id|>".to_owned(), true));
            (words, "eos_token")
        }
    }
}

fn logprob(i: usize) -> f64 {
    -(f64::from(u32::try_from(i).unwrap()) + 1.0) / 10.0
}

fn token(i: usize, text: &str, special: bool) -> Value {
    json!({"id": 1000 + i, "text": text, "logprob": logprob(i), "special": special})
}

fn top_tokens(i: usize, text: &str, params: &Value) -> Value {
    if params["top_n_tokens"].as_u64().is_some() {
        json!([{"id": 1, "text": text, "logprob": logprob(i), "special": false},
               {"id": 2, "text": format!("alt{i}"), "logprob": logprob(i) - 1.0, "special": false}])
    } else {
        Value::Null
    }
}

/// The special scripts; `None` means "answer normally".
async fn special(fake: &Fake, body: &Value, stream: bool) -> Option<Response> {
    let question = asked(body["inputs"].as_str().unwrap_or_default());
    if question.contains("invalid") {
        let msg = "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096";
        return Some(tgi_error(StatusCode::UNPROCESSABLE_ENTITY, msg, "validation"));
    }
    if question.contains("busy") {
        return Some(tgi_error(StatusCode::TOO_MANY_REQUESTS, "Model is overloaded", "overloaded"));
    }
    if question.contains("crash") {
        let msg = "Request failed during generation: CUDA out of memory";
        return Some(tgi_error(StatusCode::INTERNAL_SERVER_ERROR, msg, "generation"));
    }
    if question.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        return None;
    }
    if !stream {
        return None;
    }
    if question.contains("explode") {
        let events = vec![
            json!({"index": 1, "token": token(0, "Par", false), "generated_text": null, "details": null}),
            json!({"index": 2, "token": token(1, "tial", false), "generated_text": null, "details": null}),
            json!({"error": "Request failed during generation: boom", "error_type": "generation"}),
        ];
        return Some(sse(&events));
    }
    if question.contains("refused") {
        // TGI checks a streamed request after it has started answering, so a refusal is the
        // first event of a 200 answer.
        let e = json!({"error": "Input validation error: `top_n_tokens` must be <= 5", "error_type": "validation"});
        return Some(sse(&[e]));
    }
    if question.contains("endless") {
        let guard = fake.hung_up.guard();
        let body = stream::unfold((guard, 0usize), |(guard, i)| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let event = json!({"index": i, "token": token(i, " more", false), "generated_text": null, "details": null});
            Some((Ok::<_, std::io::Error>(format!("data:{event}\n\n")), (guard, i + 1)))
        });
        return Some(
            Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(body)).unwrap(),
        );
    }
    None
}

/// Server-sent events written a few bytes at a time, so they arrive split across chunks.
fn sse(events: &[Value]) -> Response {
    let mut text = String::new();
    for e in events {
        text.push_str("data:");
        text.push_str(&e.to_string());
        text.push_str("\n\n");
    }
    let pieces: Vec<Vec<u8>> = text.as_bytes().chunks(7).map(<[u8]>::to_vec).collect();
    let body = stream::iter(pieces).then(|p| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, std::io::Error>(p)
    });
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(body)).unwrap()
}

fn whole_answer(body: &Value) -> Value {
    let params = &body["parameters"];
    let (tokens, finish) = reply_tokens(body["inputs"].as_str().unwrap_or_default(), params);
    let text: String = tokens.iter().filter(|(_, s)| !s).map(|(t, _)| t.as_str()).collect();
    let mut details = json!({
        "finish_reason": finish, "generated_tokens": tokens.len(), "seed": null, "prefill": [],
        "tokens": tokens.iter().enumerate().map(|(i, (t, s))| token(i, t, *s)).collect::<Vec<_>>(),
    });
    if params["top_n_tokens"].as_u64().is_some() {
        details["top_tokens"] = tokens.iter().enumerate().map(|(i, (t, _))| top_tokens(i, t, params)).collect();
    }
    json!({"generated_text": text, "details": details})
}

fn stream_events(body: &Value) -> Vec<Value> {
    let params = &body["parameters"];
    let (tokens, finish) = reply_tokens(body["inputs"].as_str().unwrap_or_default(), params);
    let text: String = tokens.iter().filter(|(_, s)| !s).map(|(t, _)| t.as_str()).collect();
    let n = tokens.len();
    tokens
        .iter()
        .enumerate()
        .map(|(i, (t, s))| {
            let last = i + 1 == n;
            json!({
                "index": i + 1,
                "token": token(i, t, *s),
                "top_tokens": top_tokens(i, t, params),
                "generated_text": if last { json!(text) } else { Value::Null },
                "details": if last { json!({"finish_reason": finish, "generated_tokens": n, "seed": null}) } else { Value::Null },
            })
        })
        .collect()
}

async fn info(State(fake): State<Fake>) -> Json<Value> {
    Json(json!({
        "model_id": fake.model_id, "model_sha": null, "model_dtype": "torch.float16",
        "max_input_tokens": fake.max_total_tokens - 1, "max_total_tokens": fake.max_total_tokens,
        "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4, "version": "2.3.1",
    }))
}

async fn generate(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.seen.record("/generate", &body);
    if let Some(r) = special(&fake, &body, false).await {
        return r;
    }
    Json(whole_answer(&body)).into_response()
}

async fn generate_stream(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.seen.record("/generate_stream", &body);
    if let Some(r) = special(&fake, &body, true).await {
        return r;
    }
    sse(&stream_events(&body))
}

/// The serverless API: one route per model, streaming when the body says so, and a whole
/// answer wrapped in a list.
async fn serverless(
    State(fake): State<Fake>,
    Path((org, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    fake.seen.record(&format!("/hf/models/{org}/{name}"), &body);
    let stream = body["stream"].as_bool().unwrap_or(false);
    if let Some(r) = special(&fake, &body, stream).await {
        return r;
    }
    if stream { sse(&stream_events(&body)) } else { Json(json!([whole_answer(&body)])).into_response() }
}

async fn serverless_info() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "Not Found"}))).into_response()
}

async fn endpoint(State(fake): State<Fake>, Path((ns, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    fake.lookups.lock().unwrap().push((format!("/v2/endpoint/{ns}/{name}"), auth));
    let base = fake.base.lock().unwrap().clone();
    let (state, url) = match name.as_str() {
        "waking" if fake.waking.fetch_add(1, Ordering::SeqCst) == 0 => ("initializing", None),
        "llama" | "waking" => ("running", Some(base)),
        "sleepy" => ("paused", None),
        "booting" => ("initializing", None),
        _ => return (StatusCode::NOT_FOUND, Json(json!({"error": "Endpoint not found"}))).into_response(),
    };
    Json(json!({
        "name": name, "type": "protected", "accountId": null,
        "model": {"repository": "meta-llama/Llama-3.1-8B-Instruct", "framework": "pytorch", "task": "text-generation",
                  "image": {"custom": {"url": "ghcr.io/huggingface/text-generation-inference:2.3",
                                       "env": {"MAX_TOTAL_TOKENS": "2048", "MODEL_ID": "/repository"}}}},
        "status": {"state": state, "url": url, "createdAt": "2024-10-01T00:00:00Z", "updatedAt": "2024-10-01T00:00:00Z"},
    }))
    .into_response()
}

async fn serve(model_id: &str, max_total_tokens: u64) -> (String, Fake) {
    let fake = Fake {
        model_id: model_id.to_owned(),
        max_total_tokens,
        seen: Seen::default(),
        lookups: Arc::default(),
        base: Arc::default(),
        waking: Arc::default(),
        hung_up: HungUp::default(),
    };
    let app = Router::new()
        .route("/info", get(info))
        .route("/generate", post(generate))
        .route("/generate_stream", post(generate_stream))
        .route("/hf/models/{org}/{name}", post(serverless))
        .route("/hf/models/{org}/{name}/info", get(serverless_info))
        .route("/v2/endpoint/{ns}/{name}", get(endpoint))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    base.clone_into(&mut fake.base.lock().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, fake)
}

// ---------------------------------------------------------------- helpers

async fn build(provider_type: &str, id: &str, raw: Value) -> Result<Arc<dyn InferenceProvider>, Error> {
    let spec = registry::find(Api::Inference, provider_type, "providers.inference[0]").unwrap();
    let config = spec.check_config(raw.as_object().unwrap(), &format!("{id}.config"))?;
    let ProviderImpl::Inference(p) = (spec.build.unwrap())(BuildArgs::standalone(id, config)).await? else {
        unreachable!("builds an inference provider")
    };
    Ok(p)
}

async fn tgi(url: &str) -> Arc<dyn InferenceProvider> {
    build("remote::tgi", "tgi0", json!({"url": url, "timeout": 1.0})).await.unwrap()
}

fn model(identifier: &str, llama_model: &str) -> ModelDefWithProvider {
    ModelDefWithProvider {
        identifier: identifier.into(),
        llama_model: llama_model.into(),
        metadata: JsonObject::new(),
        provider_id: "tgi0".into(),
    }
}

fn llama() -> ModelDefWithProvider {
    model(LLAMA, LLAMA)
}

fn chat(question: &str) -> ChatCompletionRequest {
    serde_json::from_value(json!({"model": LLAMA, "messages": [{"role": "user", "content": question}]})).unwrap()
}

fn chat_with(question: &str, extra: &Value) -> ChatCompletionRequest {
    let mut v = json!({"model": LLAMA, "messages": [{"role": "user", "content": question}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn completion(text: &str, extra: &Value) -> CompletionRequest {
    let mut v = json!({"model": LLAMA, "content": text});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

/// A tokenizer file whose 256 tokens are the single bytes: a prompt is as many tokens as it has
/// bytes, each special token counting one.
fn byte_tokenizer(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut text = String::new();
    for b in 0..=255u8 {
        text.push_str(&engine.encode([b]));
        text.push(' ');
        text.push_str(&b.to_string());
        text.push('\n');
    }
    let path = dir.path().join("tokenizer.model");
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------- tgi: models

#[tokio::test]
async fn lists_the_served_model_under_its_descriptor() {
    let (url, _fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let listed = p.list_models().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].identifier.as_str(), listed[0].llama_model.as_str()), (LLAMA, LLAMA));
    assert_eq!(listed[0].metadata["huggingface_repo"], REPO);

    // A model that is not a Llama model we know is listed under its repository.
    let (url, _fake) = serve("mistralai/Mistral-7B-Instruct-v0.3", 4096).await;
    let listed = tgi(&url).await.list_models().await.unwrap();
    assert_eq!(listed[0].identifier, "mistralai/Mistral-7B-Instruct-v0.3");
}

#[tokio::test]
async fn registration_accepts_only_the_served_model() {
    let (url, _fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    p.register_model(&llama()).await.unwrap();
    p.register_model(&model("my-chat", LLAMA)).await.unwrap();
    p.register_model(&model("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")).await.unwrap();
    let e = err_of(p.register_model(&model("Llama3.1-70B-Instruct", "Llama3.1-70B-Instruct")).await);
    assert_eq!(e.status_code(), 400);
    let text = e.to_string();
    assert!(text.contains("Llama3.1-70B-Instruct") && text.contains("serves only `Llama3.1-8B-Instruct`"), "{text}");
    assert!(text.contains(REPO) && text.contains("tgi0"), "{text}");

    // A request for another model is refused the same way, before anything is sent.
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let e =
        err_of(p.chat_completion(&model("big", "Llama3.1-70B-Instruct"), chat("hi"), &RequestContext::default()).await);
    assert_eq!(e.status_code(), 400);
    assert_eq!(fake.seen.count(), 0);
}

#[tokio::test]
async fn a_server_that_is_down_does_not_stop_the_start() {
    // Nothing listens on the port of a dropped listener.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let p = tgi(&format!("http://127.0.0.1:{port}")).await;
    assert!(p.list_models().await.unwrap().is_empty());
    p.register_model(&llama()).await.unwrap();
    let started = Instant::now();
    let e = err_of(p.chat_completion(&llama(), chat("hi"), &RequestContext::default()).await);
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("tgi0") && e.to_string().contains("TGI"), "{e}");
    let e = err_of(p.chat_completion_stream(&llama(), chat("hi"), &RequestContext::default()).await);
    assert_eq!(e.status_code(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------- tgi: chat

#[tokio::test]
async fn chat_sends_the_llama3_prompt_and_reads_the_reply() {
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let req = chat("hello there");
    let expected_prompt = llama_stack_rs::prompt::render_chat_prompt(&req, LLAMA).unwrap();
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    let sent = fake.seen.last("/generate");
    assert_eq!(sent["inputs"], expected_prompt);
    assert_eq!(
        sent["parameters"],
        json!({"stop": ["<|eom_id|>", "<|eot_id|>"], "details": true, "decoder_input_details": false,
               "return_full_text": false, "do_sample": false})
    );
    let msg = r.completion_message;
    assert_eq!(msg.content.as_text(" "), "You said: hello there");
    assert_eq!(msg.stop_reason, StopReason::EndOfTurn);
    assert!(msg.tool_calls.is_empty() && r.logprobs.is_none());

    let req = chat_with(
        "hello there",
        &json!({"sampling_params": {"strategy": "top_p", "temperature": 0.6, "top_p": 0.9, "max_tokens": 2,
                                   "repetition_penalty": 1.2}}),
    );
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    let params = fake.seen.last("/generate")["parameters"].clone();
    assert_eq!(
        (&params["temperature"], &params["top_p"], &params["do_sample"]),
        (&json!(0.6), &json!(0.9), &json!(true))
    );
    assert_eq!((&params["max_new_tokens"], &params["repetition_penalty"]), (&json!(2), &json!(1.2)));
    assert_eq!(r.completion_message.content.as_text(" "), "You said:");
    assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);
}

#[tokio::test]
async fn chat_reads_tool_calls() {
    let (url, _fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let req = chat_with("what is the weather in Paris?", &json!({"tools": [{"tool_name": "brave_search"}]}));
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    let msg = r.completion_message;
    assert_eq!(msg.stop_reason, StopReason::EndOfMessage);
    assert_eq!(msg.tool_calls.len(), 1);
    assert_eq!(msg.tool_calls[0].tool_name, ToolName::Builtin(BuiltinTool::BraveSearch));
    assert_eq!(msg.tool_calls[0].arguments["query"], "weather in Paris");
}

#[tokio::test]
async fn a_model_we_do_not_know_gets_its_reply_as_text() {
    let repo = "mistralai/Mistral-7B-Instruct-v0.3";
    let (url, _fake) = serve(repo, 4096).await;
    let p = tgi(&url).await;
    let m = model(repo, repo);
    p.register_model(&m).await.unwrap();
    let r = p.chat_completion(&m, chat("weather?"), &RequestContext::default()).await.unwrap();
    let msg = r.completion_message;
    assert!(msg.tool_calls.is_empty());
    assert_eq!(msg.content.as_text(" "), "<|python_tag|>brave_search.call(query=\"weather in Paris\")");
    assert_eq!(msg.stop_reason, StopReason::EndOfMessage);
}

#[tokio::test]
async fn chat_stream_event_sequence() {
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let ctx = RequestContext::default();
    let s = p.chat_completion_stream(&llama(), chat("hello there"), &ctx).await.unwrap();
    let got: Vec<_> = s.collect().await;
    assert_eq!(
        kinds(&got),
        ["start:", "progress:You", "progress: said:", "progress: hello", "progress: there", "complete:"]
    );
    assert_eq!(got[5].as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfTurn));
    let sent = fake.seen.last("/generate_stream");
    assert!(sent.get("stream").is_none() && sent["parameters"]["details"] == true);

    let req = chat_with("weather?", &json!({"tools": [{"tool_name": "brave_search"}]}));
    let got: Vec<_> = p.chat_completion_stream(&llama(), req, &ctx).await.unwrap().collect().await;
    let k = kinds(&got);
    assert_eq!(k[..2], ["start:", "progress:tool:started"]);
    assert!(k[2..k.len() - 2].iter().all(|x| x == "progress:tool:in_progress"), "{k:?}");
    assert_eq!(k[k.len() - 2..], ["progress:tool:success", "complete:"]);
    let EventDelta::ToolCall(d) = &got[k.len() - 2].as_ref().unwrap().event.delta else { unreachable!() };
    let ToolCallDeltaContent::Call(call) = &d.content else { unreachable!() };
    assert_eq!((call.tool_name.as_str(), &call.arguments["query"]), ("brave_search", &json!("weather in Paris")));
    assert_eq!(got.last().unwrap().as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfMessage));
}

#[tokio::test]
async fn stream_errors_name_the_provider() {
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let ctx = RequestContext::default();
    let got: Vec<_> = p.chat_completion_stream(&llama(), chat("explode"), &ctx).await.unwrap().collect().await;
    assert_eq!(kinds(&got), ["start:", "progress:Par", "progress:tial", "error:502"]);
    let e = got[3].as_ref().err().unwrap().to_string();
    assert!(e.contains("tgi0") && e.contains("boom"), "{e}");

    // A refusal sent as the first event comes back as an ordinary error.
    let e = err_of(p.chat_completion_stream(&llama(), chat("refused"), &ctx).await);
    assert!(e.to_string().contains("top_n_tokens") && e.to_string().contains("tgi0"), "{e}");

    // Dropping the stream closes the connection.
    let mut s = p.completion_stream(&llama(), completion("endless", &json!({})), &ctx).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().delta, " more");
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fake.hung_up.happened() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.hung_up.happened(), "the server never saw the client go away");
}

// ---------------------------------------------------------------- tgi: completion

#[tokio::test]
async fn completion_whole_and_streamed() {
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let ctx = RequestContext::default();
    let r = p.completion(&llama(), completion("Once upon", &json!({})), &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/generate")["inputs"], "<|begin_of_text|>Once upon");
    assert_eq!(r.completion_message.content.as_text(" "), "You said: Once upon");
    assert_eq!(r.completion_message.stop_reason, StopReason::EndOfTurn);

    let req = completion("Once upon", &json!({"sampling_params": {"max_tokens": 3}}));
    let s = p.completion_stream(&llama(), req, &ctx).await.unwrap();
    let got: Vec<_> = s.map(|c| c.map(|c| (c.delta, c.stop_reason)).unwrap()).collect().await;
    assert_eq!(
        got,
        [
            ("You".into(), None),
            (" said:".into(), None),
            (" Once".into(), None),
            (String::new(), Some(StopReason::OutOfTokens))
        ]
    );
    assert_eq!(fake.seen.last("/generate_stream")["parameters"]["max_new_tokens"], 3);
}

// ---------------------------------------------------------------- tgi: log probabilities

#[tokio::test]
async fn logprobs_whole_and_streamed() {
    let (url, fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let ctx = RequestContext::default();
    let r = p.chat_completion(&llama(), chat_with("hi", &json!({"logprobs": {"top_k": 1}})), &ctx).await.unwrap();
    let lps = r.logprobs.unwrap();
    // "You", " said:", " hi"; the stop token is not text and has none.
    assert_eq!(lps.len(), 3);
    assert_eq!(json!(lps[0].logprobs_by_token), json!({"You": -0.1}));
    assert_eq!(json!(lps[2].logprobs_by_token), json!({" hi": -0.3}));
    assert!(fake.seen.last("/generate")["parameters"].get("top_n_tokens").is_none());

    let r = p.completion(&llama(), completion("hi", &json!({"logprobs": {"top_k": 2}})), &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/generate")["parameters"]["top_n_tokens"], 2);
    let first: Vec<(String, f64)> =
        r.logprobs.unwrap()[0].logprobs_by_token.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(first, [("You".to_owned(), -0.1), ("alt0".to_owned(), -1.1)]);

    let s =
        p.chat_completion_stream(&llama(), chat_with("hi", &json!({"logprobs": {"top_k": 1}})), &ctx).await.unwrap();
    let got: Vec<_> = s.map(Result::unwrap).collect().await;
    assert!(got[0].event.logprobs.is_none());
    let tokens: Vec<Vec<String>> = got
        .iter()
        .map(|c| c.event.logprobs.iter().flatten().flat_map(|l| l.logprobs_by_token.keys().cloned()).collect())
        .collect();
    let none: Vec<String> = Vec::new();
    assert_eq!(tokens, [none.clone(), vec!["You".to_owned()], vec![" said:".to_owned()], vec![" hi".to_owned()], none]);

    let s = p.completion_stream(&llama(), completion("hi", &json!({"logprobs": {"top_k": 1}})), &ctx).await.unwrap();
    let got: Vec<_> = s.map(Result::unwrap).collect().await;
    let (stop, text) = got.split_last().unwrap();
    assert!(text.iter().all(|c| c.logprobs.as_ref().is_some_and(|l| l.len() == 1)), "{text:?}");
    assert!(stop.stop_reason.is_some() && stop.logprobs.is_none());
    // Without asking, no log probabilities.
    let s = p.completion_stream(&llama(), completion("hi", &json!({})), &ctx).await.unwrap();
    assert!(s.map(Result::unwrap).all(|c| async move { c.logprobs.is_none() }).await);
}

// ---------------------------------------------------------------- tgi: the reply's budget

#[tokio::test]
async fn max_new_tokens_fits_the_server_total() {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer_path = byte_tokenizer(&dir);
    let counter = Llama3Tokenizer::from_file(&tokenizer_path).unwrap();
    let (url, fake) = serve(REPO, 400).await;
    let raw = json!({"url": url, "tokenizer": tokenizer_path.to_str().unwrap()});
    let p = build("remote::tgi", "tgi0", raw).await.unwrap();
    let ctx = RequestContext::default();

    p.completion(&llama(), completion("hello", &json!({})), &ctx).await.unwrap();
    let sent = fake.seen.last("/generate");
    let prompt_tokens = u64::try_from(counter.encode(sent["inputs"].as_str().unwrap(), true).len()).unwrap();
    // `<|begin_of_text|>` and five bytes.
    assert_eq!(prompt_tokens, 6);
    assert_eq!(sent["parameters"]["max_new_tokens"], 400 - prompt_tokens - 1);

    p.chat_completion(&llama(), chat_with("hi", &json!({"sampling_params": {"max_tokens": 1000}})), &ctx)
        .await
        .unwrap();
    let sent = fake.seen.last("/generate");
    let prompt_tokens = u64::try_from(counter.encode(sent["inputs"].as_str().unwrap(), true).len()).unwrap();
    assert_eq!(sent["parameters"]["max_new_tokens"], 400 - prompt_tokens - 1);
    p.chat_completion(&llama(), chat_with("hi", &json!({"sampling_params": {"max_tokens": 7}})), &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/generate")["parameters"]["max_new_tokens"], 7);

    // A prompt that leaves no room is refused before anything is sent.
    let before = fake.seen.count();
    let e = err_of(p.completion(&llama(), completion(&"x".repeat(500), &json!({})), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("501 tokens") && e.to_string().contains("400"), "{e}");
    assert_eq!(fake.seen.count(), before);

    // Without a tokenizer the caller's limit is kept within the total, and none is left to TGI.
    let p = tgi(&url).await;
    p.completion(&llama(), completion("hello", &json!({"sampling_params": {"max_tokens": 1000}})), &ctx).await.unwrap();
    assert_eq!(fake.seen.last("/generate")["parameters"]["max_new_tokens"], 399);
    p.completion(&llama(), completion("hello", &json!({})), &ctx).await.unwrap();
    assert!(fake.seen.last("/generate")["parameters"].get("max_new_tokens").is_none());

    let e =
        err_of(build("remote::tgi", "tgi0", json!({"url": url, "tokenizer": "/nonexistent/tokenizer.model"})).await);
    assert!(e.to_string().contains("tgi0.config.tokenizer") && e.to_string().contains("/nonexistent"), "{e}");
}

// ---------------------------------------------------------------- tgi: errors

#[tokio::test]
async fn tgi_errors_map_to_statuses() {
    let (url, _fake) = serve(REPO, 4096).await;
    let p = tgi(&url).await;
    let ctx = RequestContext::default();
    let e = err_of(p.chat_completion(&llama(), chat("invalid"), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains(LLAMA) && e.to_string().contains("must be <= 4096"), "{e}");
    let e = err_of(p.chat_completion(&llama(), chat("busy"), &ctx).await);
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("overloaded"), "{e}");
    let e = err_of(p.completion_stream(&llama(), completion("busy", &json!({})), &ctx).await);
    assert_eq!(e.status_code(), 503);
    let e = err_of(p.chat_completion(&llama(), chat("crash"), &ctx).await);
    assert_eq!(e.status_code(), 502);
    assert!(e.to_string().contains("CUDA out of memory") && e.to_string().contains("tgi0"), "{e}");
    let started = Instant::now();
    let e = err_of(p.chat_completion(&llama(), chat("slow"), &ctx).await);
    assert_eq!(e.status_code(), 504);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let e = err_of(p.embeddings(&llama(), vec!["x".into()], &ctx).await);
    assert_eq!(e.status_code(), 501);
    let image =
        json!({"model": LLAMA, "messages": [{"role": "user", "content": [{"image": {"uri": "http://x/y.png"}}]}]});
    let e = err_of(p.chat_completion(&llama(), serde_json::from_value(image).unwrap(), &ctx).await);
    assert!(e.status_code() == 400 && e.to_string().contains("messages[0].content"), "{e}");
}

// ---------------------------------------------------------------- hf::serverless

#[tokio::test]
async fn serverless_posts_to_the_model_route() {
    let (url, fake) = serve(REPO, 4096).await;
    let raw = json!({"huggingface_repo": "meta-llama/Llama-3.1-8B-Instruct", "api_token": "hf_secret",
                     "api_url": format!("{url}/hf"), "timeout": 1.0});
    let p = build("remote::hf::serverless", "hf0", raw).await.unwrap();
    let listed = p.list_models().await.unwrap();
    assert_eq!(
        (listed[0].identifier.as_str(), &listed[0].metadata["huggingface_repo"]),
        (LLAMA, &json!("meta-llama/Llama-3.1-8B-Instruct"))
    );
    p.register_model(&llama()).await.unwrap();
    assert!(p.register_model(&model("Llama3.2-3B-Instruct", "Llama3.2-3B-Instruct")).await.is_err());

    let route = "/hf/models/meta-llama/Llama-3.1-8B-Instruct";
    let ctx = RequestContext::default();
    let r = p.chat_completion(&llama(), chat("hello"), &ctx).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(" "), "You said: hello");
    let sent = fake.seen.last(route);
    assert_eq!(sent["stream"], false);
    // The model's `/info` is not answered, so no limit is assumed.
    assert!(sent["parameters"].get("max_new_tokens").is_none());

    let got: Vec<_> = p.chat_completion_stream(&llama(), chat("hello"), &ctx).await.unwrap().collect().await;
    assert_eq!(kinds(&got), ["start:", "progress:You", "progress: said:", "progress: hello", "complete:"]);
    assert_eq!(fake.seen.last(route)["stream"], true);
    let e = err_of(p.chat_completion(&llama(), chat("busy"), &ctx).await);
    assert!(e.status_code() == 503 && e.to_string().contains("Hugging Face Inference API"), "{e}");
}

// ---------------------------------------------------------------- hf::endpoint

fn endpoint_config(url: &str, name: &str) -> Value {
    json!({"endpoint_name": name, "api_token": "hf_secret", "api_url": format!("{url}/v2"), "wait": 0.3, "timeout": 1.0})
}

#[tokio::test]
async fn a_running_endpoint_is_found_and_used() {
    let (url, fake) = serve("/repository", 4096).await;
    let p = build("remote::hf::endpoint", "ep0", endpoint_config(&url, "acme/llama")).await.unwrap();
    // Building does not look the endpoint up.
    assert!(fake.lookups.lock().unwrap().is_empty());
    let listed = p.list_models().await.unwrap();
    assert_eq!(listed[0].identifier, LLAMA);
    p.register_model(&llama()).await.unwrap();
    let req = chat_with("hi", &json!({"sampling_params": {"max_tokens": 5000}}));
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(" "), "You said: hi");
    // The token limit comes from the endpoint's environment (2048), not the server's `/info`.
    assert_eq!(fake.seen.last("/generate")["parameters"]["max_new_tokens"], 2047);
    let lookups = fake.lookups.lock().unwrap().clone();
    assert!(
        lookups.iter().all(|(path, auth)| path == "/v2/endpoint/acme/llama" && auth == "Bearer hf_secret"),
        "{lookups:?}"
    );
}

#[tokio::test]
async fn endpoints_that_are_not_running_answer_503() {
    let (url, fake) = serve(REPO, 4096).await;
    let ctx = RequestContext::default();
    let p = build("remote::hf::endpoint", "ep0", endpoint_config(&url, "acme/sleepy")).await.unwrap();
    // Its model is known even while it is paused.
    assert_eq!(p.list_models().await.unwrap()[0].identifier, LLAMA);
    let e = err_of(p.chat_completion(&llama(), chat("hi"), &ctx).await);
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("acme/sleepy") && e.to_string().contains("paused"), "{e}");

    let p = build("remote::hf::endpoint", "ep0", endpoint_config(&url, "acme/booting")).await.unwrap();
    let started = Instant::now();
    let e = err_of(p.chat_completion(&llama(), chat("hi"), &ctx).await);
    let waited = started.elapsed();
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("acme/booting") && e.to_string().contains("initializing"), "{e}");
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");

    // One that comes up within the wait is used.
    let mut raw = endpoint_config(&url, "acme/waking");
    raw["wait"] = json!(5.0);
    let p = build("remote::hf::endpoint", "ep0", raw).await.unwrap();
    let r = p.chat_completion(&llama(), chat("hi"), &ctx).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(" "), "You said: hi");
    assert_eq!(fake.waking.load(Ordering::SeqCst), 2);

    let p = build("remote::hf::endpoint", "ep0", endpoint_config(&url, "acme/nothing")).await.unwrap();
    assert!(p.list_models().await.unwrap().is_empty());
    let e = err_of(p.chat_completion(&llama(), chat("hi"), &ctx).await);
    assert!(e.status_code() == 400 && e.to_string().contains("acme/nothing"), "{e}");
}

#[tokio::test]
async fn malformed_endpoint_names_fail_the_build() {
    for bad in ["just-a-name", "acme/", "a/b/c"] {
        let e = err_of(build("remote::hf::endpoint", "ep0", json!({"endpoint_name": bad})).await);
        assert!(
            matches!(&e, Error::Config(m) if m.contains("ep0.config.endpoint_name") && m.contains("namespace/name")),
            "{e}"
        );
    }
    let e = err_of(build("remote::hf::endpoint", "ep0", json!({})).await);
    assert!(e.to_string().contains("endpoint_name` is required"), "{e}");
}

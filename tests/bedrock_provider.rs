//! The `remote::bedrock` provider against a fake Bedrock Runtime served in-process. The fake
//! checks every request's `SigV4` signature with its own implementation (HMAC built here from
//! SHA-256) and answers the way AWS documents: Converse JSON, event streams framed with CRC32s
//! computed here, the native Llama API, and error bodies with `x-amzn-ErrorType`.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use common::{HungUp, chat_req, err_of, kinds, weather_tool};
use futures::StreamExt;
use futures::stream;
use llama_stack_rs::config::Api;
use llama_stack_rs::error::Error;
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::registry::{self, BuildArgs};
use llama_stack_rs::providers::{ProviderImpl, RequestContext};
use llama_stack_rs::types::common::{BuiltinTool, JsonObject, StopReason, ToolName};
use llama_stack_rs::types::inference::{ChatCompletionRequest, CompletionRequest, EventDelta, ToolCallDeltaContent};
use llama_stack_rs::types::models::ModelDefWithProvider;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REGION: &str = "us-west-2";
/// Access keys the fake knows: id, secret, and the session token it must come with.
const KEYS: &[(&str, &str, Option<&str>)] =
    &[("AKIDTEST", "test/secret+key", None), ("ASIATEMP", "temporary-secret", Some("session-token-1"))];
const LLAMA_8B: &str = "meta.llama3-1-8b-instruct-v1:0";

// ---------------------------------------------------------------- SigV4, checked independently

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// HMAC-SHA256 as RFC 2104 defines it.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// The path as AWS canonicalises it for every service but S3: the path as sent, encoded again.
fn canonical_uri(raw_path: &str) -> String {
    raw_path
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Checks a request's signature; the error is the message AWS would answer with.
fn verify_signature(method: &str, raw_path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let auth = header("authorization");
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("Authorization header requires AWS4-HMAC-SHA256")?;
    let mut credential = "";
    let mut signed_headers = "";
    let mut signature = "";
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = v,
            Some(("SignedHeaders", v)) => signed_headers = v,
            Some(("Signature", v)) => signature = v,
            _ => return Err(format!("unexpected Authorization part `{part}`")),
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("malformed credential scope `{credential}`"));
    };
    let Some((_, secret, token)) = KEYS.iter().find(|(id, _, _)| id == key_id) else {
        return Err(format!("UNKNOWN:The security token included in the request is invalid ({key_id})"));
    };
    if (*region, *service) != (REGION, "bedrock") {
        return Err(format!(
            "credential should be scoped to region {REGION} and service bedrock, not {region}/{service}"
        ));
    }
    let amz_date = header("x-amz-date");
    let when = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ").map_err(|e| e.to_string())?;
    let skew = (chrono::Utc::now().naive_utc() - when).num_seconds().abs();
    if !amz_date.starts_with(date) || skew > 300 {
        return Err(format!("Signature expired or not yet valid: {amz_date}"));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for needed in ["host", "x-amz-date"] {
        if !names.contains(&needed) {
            return Err(format!("`{needed}` must be signed"));
        }
    }
    if let Some(token) = token {
        if header("x-amz-security-token") != *token || !names.contains(&"x-amz-security-token") {
            return Err("The security token included in the request is invalid".into());
        }
    }
    let canonical_headers = names.iter().fold(String::new(), |mut out, n| {
        let _ = writeln!(out, "{n}:{}", header(n).trim());
        out
    });
    let canonical = format!(
        "{method}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        canonical_uri(raw_path),
        hex(&sha256(body))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [*region, *service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    if hex(&hmac_sha256(&key, string_to_sign.as_bytes())) != signature {
        return Err("The request signature we calculated does not match the signature you provided. Check your AWS \
                    Secret Access Key and signing method."
            .into());
    }
    Ok(())
}

#[test]
fn the_fakes_hmac_matches_rfc_4231() {
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

// ---------------------------------------------------------------- event-stream frames

/// CRC-32 (IEEE), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap());
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(16 + h.len() + payload.len()).unwrap();
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&u32::try_from(h.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out
}

/// An event as Bedrock frames it, with the random padding field it adds.
fn event(event_type: &str, mut payload: Value) -> Vec<u8> {
    payload["p"] = json!("abcdefghij");
    let headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")];
    frame(&headers, payload.to_string().as_bytes())
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    let headers = [(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")];
    frame(&headers, json!({"message": message}).to_string().as_bytes())
}

/// Frames written a few bytes at a time, so they arrive split across reads.
fn event_stream(frames: &[Vec<u8>]) -> Response {
    let bytes: Vec<u8> = frames.concat();
    let pieces: Vec<Vec<u8>> = bytes.chunks(11).map(<[u8]>::to_vec).collect();
    let body = stream::iter(pieces).then(|p| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, std::io::Error>(p)
    });
    Response::builder()
        .header("content-type", "application/vnd.amazon.eventstream")
        .body(Body::from_stream(body))
        .unwrap()
}

// ---------------------------------------------------------------- the fake Bedrock Runtime

#[derive(Debug, Clone)]
struct Seen {
    raw_path: String,
    model: String,
    action: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Raised when the body of an endless stream is dropped, i.e. the client hung up.
    hung_up: HungUp,
}

impl Fake {
    fn last(&self, action: &str) -> Seen {
        self.seen.lock().unwrap().iter().rev().find(|s| s.action == action).cloned().unwrap()
    }

    fn count(&self, model: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| s.model == model).count()
    }
}

fn failure(status: StatusCode, kind: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("x-amzn-ErrorType", format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"message": message}).to_string()))
        .unwrap()
}

fn json_response(v: &Value) -> Response {
    Response::builder().header("content-type", "application/json").body(Body::from(v.to_string())).unwrap()
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Word pieces that keep their leading space, cut to `limit` words; the flag says whether cut.
fn words(text: &str, limit: Option<u64>) -> (Vec<String>, bool) {
    let all: Vec<String> =
        text.split(' ').enumerate().map(|(i, w)| if i == 0 { w.to_owned() } else { format!(" {w}") }).collect();
    match limit.and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n < all.len() => (all[..n].to_vec(), true),
        _ => (all, false),
    }
}

/// What the model answers to a Converse request: `Ok(text)` or `Err((tool name, input))`.
fn converse_reply(body: &Value) -> Result<String, (String, Value)> {
    let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or(Value::Null);
    let blocks = last["content"].as_array().cloned().unwrap_or_default();
    if let Some(result) = blocks.iter().find_map(|b| b.get("toolResult")) {
        return Ok(format!("The tool said {}", result["content"][0]["text"].as_str().unwrap_or("?")));
    }
    if let Some(tool) = body["toolConfig"]["tools"][0]["toolSpec"]["name"].as_str() {
        let input = if tool == "brave_search" { json!({"query": "rust"}) } else { json!({"city": "Paris"}) };
        return Err((tool.to_owned(), input));
    }
    let text: Vec<&str> = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    Ok(format!("echo: {}", text.join("")))
}

#[allow(clippy::too_many_lines, reason = "one arm per fake model")]
async fn handle(State(fake): State<Fake>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let raw_path = parts.uri.path().to_owned();
    if let Err(message) = verify_signature(parts.method.as_str(), &raw_path, &parts.headers, &body) {
        let kind =
            if message.starts_with("UNKNOWN:") { "UnrecognizedClientException" } else { "InvalidSignatureException" };
        return failure(StatusCode::FORBIDDEN, kind, message.trim_start_matches("UNKNOWN:"));
    }
    let segments: Vec<&str> = raw_path.split('/').collect();
    let ["", "model", model, action] = segments.as_slice() else {
        return failure(StatusCode::NOT_FOUND, "UnknownOperationException", "no such operation");
    };
    let (model, action) = (percent_decode(model), (*action).to_owned());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        raw_path: raw_path.clone(),
        model: model.clone(),
        action: action.clone(),
        body: body.clone(),
    });
    let earlier = fake.count(&model) - 1;
    match model.as_str() {
        LLAMA_8B | "meta.llama3-1-70b-instruct-v1:0" | "fake.stream-tools" => {}
        "fake.denied" => {
            return failure(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            );
        }
        "fake.invalid" => {
            return failure(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
            );
        }
        "fake.model-timeout" => {
            return failure(
                StatusCode::REQUEST_TIMEOUT,
                "ModelTimeoutException",
                "Model has timed out in processing the request.",
            );
        }
        "fake.throttled" => {
            return failure(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        "fake.throttled-once" if earlier == 0 => {
            return failure(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        "fake.throttled-once" => {}
        "fake.slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        "fake.stream-error" => {
            let delta = json!({"contentBlockIndex": 0, "delta": {"text": "partial"}});
            return event_stream(&[
                event("messageStart", json!({"role": "assistant"})),
                event("contentBlockDelta", delta),
                exception("modelStreamErrorException", "The model stopped unexpectedly."),
            ]);
        }
        "fake.stall" => {
            let first = event("messageStart", json!({"role": "assistant"}));
            let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(stream::once(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Vec::new())
            }));
            return Response::builder().body(Body::from_stream(body)).unwrap();
        }
        "fake.endless" => {
            let guard = fake.hung_up.guard();
            let start = event("messageStart", json!({"role": "assistant"}));
            let body = stream::once(async move { Ok::<_, std::io::Error>(start) }).chain(stream::unfold(
                guard,
                |guard| async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Some((
                        Ok(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": " more"}}))),
                        guard,
                    ))
                },
            ));
            return Response::builder().body(Body::from_stream(body)).unwrap();
        }
        other => {
            return failure(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Could not resolve the foundation model from the provided model identifier {other}."),
            );
        }
    }
    match action.as_str() {
        "converse" => converse(&body),
        "converse-stream" => converse_stream(&model, &body),
        "invoke" => invoke(&body),
        "invoke-with-response-stream" => invoke_stream(&body),
        _ => failure(StatusCode::NOT_FOUND, "UnknownOperationException", "no such operation"),
    }
}

fn converse(body: &Value) -> Response {
    let limit = body["inferenceConfig"]["maxTokens"].as_u64();
    let (content, stop) = match converse_reply(body) {
        Ok(text) => {
            let (pieces, cut) = words(&text, limit);
            (json!([{"text": pieces.concat()}]), if cut { "max_tokens" } else { "end_turn" })
        }
        Err((name, input)) => (
            json!([{"text": "Let me check."}, {"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": input}}]),
            "tool_use",
        ),
    };
    json_response(&json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
        "metrics": {"latencyMs": 12},
    }))
}

fn converse_stream(model: &str, body: &Value) -> Response {
    // What Bedrock says to Llama 3.1 when tools come with a stream.
    if body.get("toolConfig").is_some() {
        return failure(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "This model doesn't support tool use in streaming mode.",
        );
    }
    let mut frames = vec![event("messageStart", json!({"role": "assistant"}))];
    let stop = if model == "fake.stream-tools" {
        frames.push(event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather"}}}),
        ));
        for piece in ["{\"city\"", ": \"Par", "is\"}"] {
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}),
            ));
        }
        frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        "tool_use"
    } else {
        let text = converse_reply(body).unwrap_or_default();
        let (pieces, cut) = words(&text, body["inferenceConfig"]["maxTokens"].as_u64());
        for p in pieces {
            frames.push(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": p}})));
        }
        frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        if cut { "max_tokens" } else { "end_turn" }
    };
    frames.push(event("messageStop", json!({"stopReason": stop})));
    frames.push(event(
        "metadata",
        json!({"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}, "metrics": {"latencyMs": 9}}),
    ));
    event_stream(&frames)
}

fn llama_text(body: &Value) -> (Vec<String>, &'static str) {
    let prompt = body["prompt"].as_str().unwrap_or_default();
    let text = format!("echo: {}", prompt.trim_start_matches("<|begin_of_text|>"));
    let (pieces, cut) = words(&text, body["max_gen_len"].as_u64());
    (pieces, if cut { "length" } else { "stop" })
}

fn invoke(body: &Value) -> Response {
    let (pieces, stop) = llama_text(body);
    json_response(
        &json!({"generation": pieces.concat(), "prompt_token_count": 4, "generation_token_count": pieces.len(), "stop_reason": stop}),
    )
}

fn invoke_stream(body: &Value) -> Response {
    let (pieces, stop) = llama_text(body);
    let chunk =
        |v: Value| event("chunk", json!({"bytes": base64::engine::general_purpose::STANDARD.encode(v.to_string())}));
    let mut frames: Vec<Vec<u8>> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| chunk(json!({"generation": p, "prompt_token_count": if i == 0 { json!(4) } else { Value::Null }, "generation_token_count": i + 1, "stop_reason": null})))
        .collect();
    frames.push(chunk(json!({"generation": "", "prompt_token_count": null, "generation_token_count": pieces.len(), "stop_reason": stop,
        "amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": pieces.len()}})));
    event_stream(&frames)
}

async fn serve_fake() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

// ---------------------------------------------------------------- helpers

async fn build(config: Value) -> Arc<dyn InferenceProvider> {
    let spec = registry::find(Api::Inference, "remote::bedrock", "providers.inference[0]").unwrap();
    let raw: JsonObject = config.as_object().cloned().unwrap();
    let config = spec.check_config(&raw, "providers.inference[0].config").unwrap();
    let ProviderImpl::Inference(p) = (spec.build.unwrap())(BuildArgs::standalone("bedrock0", config)).await.unwrap()
    else {
        unreachable!("remote::bedrock builds an inference provider")
    };
    p
}

/// A provider with the fake's plain key pair; `extra` adds or replaces config fields.
async fn provider_at(url: &str, extra: Value) -> Arc<dyn InferenceProvider> {
    let mut config = json!({"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "test/secret+key",
                            "region_name": REGION, "endpoint_url": url});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    build(config).await
}

fn model(llama: &str, bedrock: Option<&str>) -> ModelDefWithProvider {
    let mut metadata = JsonObject::new();
    if let Some(b) = bedrock {
        metadata.insert("provider_model".into(), json!(b));
    }
    ModelDefWithProvider {
        identifier: "my-model".into(),
        llama_model: llama.into(),
        metadata,
        provider_id: "bedrock0".into(),
    }
}

fn llama() -> ModelDefWithProvider {
    model("Llama3.1-8B-Instruct", None)
}

fn fake_model(name: &str) -> ModelDefWithProvider {
    model("Llama3.1-8B-Instruct", Some(name))
}

fn hello() -> ChatCompletionRequest {
    chat_req(json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}))
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn lists_and_registers_the_mapped_llama_models() {
    let (url, _fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let listed = p.list_models().await.unwrap();
    let ids: Vec<(&str, &Value)> =
        listed.iter().map(|m| (m.identifier.as_str(), &m.metadata["provider_model"])).collect();
    assert_eq!(
        ids,
        [
            ("Llama3.1-8B-Instruct", &json!("meta.llama3-1-8b-instruct-v1:0")),
            ("Llama3.1-70B-Instruct", &json!("meta.llama3-1-70b-instruct-v1:0")),
            ("Llama3.1-405B-Instruct", &json!("meta.llama3-1-405b-instruct-v1:0")),
        ]
    );
    p.register_model(&llama()).await.unwrap();
    p.register_model(&model("anything", Some("meta.llama3-2-3b-instruct-v1:0"))).await.unwrap();
    let e = err_of(p.register_model(&model("Llama3.2-1B-Instruct", None)).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("Llama3.2-1B-Instruct") && e.to_string().contains("bedrock0"), "{e}");
}

#[tokio::test]
async fn converse_sends_signed_messages_and_settings() {
    let (url, fake) = serve_fake().await;
    // Temporary credentials: the session token must be sent and signed.
    let p = provider_at(
        &url,
        json!({"aws_access_key_id": "ASIATEMP", "aws_secret_access_key": "temporary-secret",
                                     "aws_session_token": "session-token-1"}),
    )
    .await;
    let req = chat_req(json!({
        "model": "Llama3.1-8B-Instruct",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is this", "context": "some context"},
        ],
        "sampling_params": {"strategy": "top_p", "temperature": 0.5, "top_p": 0.9, "max_tokens": 100},
    }));
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    let seen = fake.last("converse");
    assert_eq!(seen.raw_path, "/model/meta.llama3-1-8b-instruct-v1%3A0/converse");
    assert_eq!(seen.model, LLAMA_8B);
    assert_eq!(
        seen.body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "what is this"}, {"text": "\n\nsome context"}]}],
            "system": [{"text": "be brief"}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9},
        })
    );
    let msg = r.completion_message;
    assert_eq!(msg.content.as_text(""), "echo: what is this\n\nsome context");
    assert_eq!(msg.stop_reason, StopReason::EndOfTurn);
    assert!(msg.tool_calls.is_empty() && r.logprobs.is_none());

    let mut req = hello();
    req.sampling_params = Some(serde_json::from_value(json!({"max_tokens": 2})).unwrap());
    let r = p.chat_completion(&llama(), req, &RequestContext::default()).await.unwrap();
    assert_eq!(fake.last("converse").body["inferenceConfig"], json!({"maxTokens": 2, "temperature": 0.0}));
    assert_eq!(r.completion_message.content.as_text(""), "echo: hello");
    assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);
}

#[tokio::test]
async fn tool_calls_round_trip_through_converse() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let ctx = RequestContext::default();
    let ask = json!({"role": "user", "content": "weather in Paris?"});
    let req = chat_req(json!({"model": "m", "messages": [ask], "tools": [weather_tool()]}));
    let r = p.chat_completion(&llama(), req, &ctx).await.unwrap();
    assert_eq!(
        fake.last("converse").body["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Current weather", "inputSchema": {"json": {
            "type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}}}]})
    );
    let msg = r.completion_message;
    assert_eq!(msg.stop_reason, StopReason::EndOfMessage);
    assert_eq!(msg.content.as_text(""), "Let me check.");
    let call = msg.tool_calls[0].clone();
    assert_eq!((call.call_id.as_str(), &call.tool_name), ("tooluse_1", &ToolName::Custom("get_weather".into())));
    assert_eq!(call.arguments["city"], "Paris");

    // The call and its result go back, as an agent loop sends them.
    let assistant = serde_json::to_value(&msg).unwrap();
    let result =
        json!({"role": "ipython", "call_id": "tooluse_1", "tool_name": "get_weather", "content": "sunny, 21C"});
    let req = chat_req(json!({"model": "m", "messages": [ask, assistant, result], "tools": [weather_tool()]}));
    let r = p.chat_completion(&llama(), req, &ctx).await.unwrap();
    let sent = fake.last("converse").body["messages"].clone();
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": [{"text": "Let me check."},
               {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny, 21C"}], "status": "success"}}]})
    );
    assert_eq!(r.completion_message.content.as_text(""), "The tool said sunny, 21C");
    assert_eq!(r.completion_message.stop_reason, StopReason::EndOfTurn);

    // Built-in tool names come back as the built-in tools.
    let req = chat_req(json!({"model": "m", "messages": [{"role": "user", "content": "search"}],
                              "tools": [{"tool_name": "brave_search"}]}));
    let r = p.chat_completion(&llama(), req, &ctx).await.unwrap();
    let call = &r.completion_message.tool_calls[0];
    assert_eq!(call.tool_name, ToolName::Builtin(BuiltinTool::BraveSearch));
    assert_eq!(call.arguments["query"], "rust");
}

#[tokio::test]
async fn converse_stream_events() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let ctx = RequestContext::default();
    // Tools are left out of streams (Bedrock refuses them for Llama 3.1, and the fake too).
    let req = chat_req(json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}],
                              "tools": [weather_tool()], "stream": true}));
    let events: Vec<_> = p.chat_completion_stream(&llama(), req, &ctx).await.unwrap().collect().await;
    let seen = fake.last("converse-stream");
    assert_eq!(seen.raw_path, "/model/meta.llama3-1-8b-instruct-v1%3A0/converse-stream");
    assert!(seen.body.get("toolConfig").is_none());
    assert_eq!(kinds(&events), ["start:", "progress:echo:", "progress: hello", "progress: there", "complete:"]);
    assert_eq!(events[4].as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfTurn));

    let mut req = hello();
    req.sampling_params = Some(serde_json::from_value(json!({"max_tokens": 1})).unwrap());
    let events: Vec<_> = p.chat_completion_stream(&llama(), req, &ctx).await.unwrap().collect().await;
    assert_eq!(kinds(&events), ["start:", "progress:echo:", "complete:"]);
    assert_eq!(events[2].as_ref().unwrap().event.stop_reason, Some(StopReason::OutOfTokens));
}

#[tokio::test]
async fn converse_stream_tool_use_and_exceptions() {
    let (url, _fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let ctx = RequestContext::default();
    let events: Vec<_> =
        p.chat_completion_stream(&fake_model("fake.stream-tools"), hello(), &ctx).await.unwrap().collect().await;
    assert_eq!(
        kinds(&events),
        [
            "start:",
            "progress:tool:started",
            "progress:tool:in_progress",
            "progress:tool:in_progress",
            "progress:tool:in_progress",
            "progress:tool:success",
            "complete:"
        ]
    );
    let success = &events[5].as_ref().unwrap().event;
    let EventDelta::ToolCall(d) = &success.delta else { unreachable!() };
    let ToolCallDeltaContent::Call(call) = &d.content else { unreachable!("{d:?}") };
    assert_eq!(
        (call.call_id.as_str(), call.tool_name.as_str(), &call.arguments["city"]),
        ("tooluse_9", "get_weather", &json!("Paris"))
    );
    assert_eq!(success.stop_reason, Some(StopReason::EndOfMessage));
    assert_eq!(events[6].as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfMessage));

    let events: Vec<_> =
        p.chat_completion_stream(&fake_model("fake.stream-error"), hello(), &ctx).await.unwrap().collect().await;
    assert_eq!(kinds(&events), ["start:", "progress:partial", "error:502"]);
    let e = events[2].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("bedrock0") && e.contains("ModelStreamErrorException") && e.contains("stopped unexpectedly"),
        "{e}"
    );
}

#[tokio::test]
async fn completion_through_the_native_llama_api() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let ctx = RequestContext::default();
    let req: CompletionRequest = serde_json::from_value(
        json!({"model": "m", "content": "once upon a time", "sampling_params": {"max_tokens": 3}}),
    )
    .unwrap();
    let r = p.completion(&llama(), req, &ctx).await.unwrap();
    let seen = fake.last("invoke");
    assert_eq!(seen.raw_path, "/model/meta.llama3-1-8b-instruct-v1%3A0/invoke");
    assert_eq!(seen.body, json!({"prompt": "<|begin_of_text|>once upon a time", "max_gen_len": 3, "temperature": 0.0}));
    assert_eq!(r.completion_message.content.as_text(""), "echo: once upon");
    assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);

    let req: CompletionRequest =
        serde_json::from_value(json!({"model": "m", "content": ["a", "b"], "stream": true})).unwrap();
    let chunks: Vec<_> = p.completion_stream(&llama(), req, &ctx).await.unwrap().collect().await;
    assert_eq!(fake.last("invoke-with-response-stream").body["prompt"], "<|begin_of_text|>ab");
    let chunks: Vec<_> = chunks.into_iter().map(Result::unwrap).collect();
    assert_eq!(chunks.iter().map(|c| c.delta.as_str()).collect::<String>(), "echo: ab");
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.stop_reason.is_none()));
    assert_eq!(chunks.last().unwrap().stop_reason, Some(StopReason::EndOfTurn));
}

#[tokio::test]
async fn bedrock_errors_map_to_statuses() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({"total_max_attempts": 2})).await;
    let ctx = RequestContext::default();

    let e = err_of(p.chat_completion(&fake_model("fake.invalid"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("`fake.invalid`") && e.to_string().contains("ValidationException"), "{e}");

    let e = err_of(p.chat_completion_stream(&fake_model("fake.denied"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 403);
    assert!(e.to_string().contains("AccessDeniedException") && e.to_string().contains("bedrock0"), "{e}");

    let e = err_of(p.chat_completion(&fake_model("fake.nonexistent"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("`fake.nonexistent`") && e.to_string().contains("ResourceNotFoundException"), "{e}");

    let e = err_of(p.chat_completion(&fake_model("fake.model-timeout"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 504);

    // Throttling is retried up to `total_max_attempts`, then reported as unavailable.
    let e = err_of(p.chat_completion(&fake_model("fake.throttled"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 503);
    assert!(e.to_string().contains("ThrottlingException") && e.to_string().contains("2 attempts"), "{e}");
    assert_eq!(fake.count("fake.throttled"), 2);
    let r = p.chat_completion(&fake_model("fake.throttled-once"), hello(), &ctx).await.unwrap();
    assert_eq!(r.completion_message.content.as_text(""), "echo: hello there");
    assert_eq!(fake.count("fake.throttled-once"), 2);

    // With one attempt allowed, nothing is retried.
    let once = provider_at(&url, json!({"total_max_attempts": 1})).await;
    assert_eq!(err_of(once.chat_completion(&fake_model("fake.throttled"), hello(), &ctx).await).status_code(), 503);
    assert_eq!(fake.count("fake.throttled"), 3);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_signature_check() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({"aws_secret_access_key": "not-the-secret"})).await;
    let e = err_of(p.chat_completion(&llama(), hello(), &RequestContext::default()).await);
    assert_eq!(e.status_code(), 403);
    assert!(e.to_string().contains("signature we calculated does not match"), "{e}");
    assert!(fake.seen.lock().unwrap().is_empty(), "the fake served a request it should have refused");
    let p = provider_at(&url, json!({"aws_access_key_id": "AKIDNOBODY"})).await;
    let e = err_of(
        p.completion(
            &llama(),
            serde_json::from_value(json!({"model": "m", "content": "x"})).unwrap(),
            &RequestContext::default(),
        )
        .await,
    );
    assert_eq!(e.status_code(), 403);
    assert!(e.to_string().contains("UnrecognizedClientException"), "{e}");
}

#[tokio::test]
async fn slow_answers_hit_the_read_timeout() {
    let (url, _fake) = serve_fake().await;
    let p = provider_at(&url, json!({"read_timeout": 1})).await;
    let ctx = RequestContext::default();
    let started = Instant::now();
    let e = err_of(p.chat_completion(&fake_model("fake.slow"), hello(), &ctx).await);
    assert_eq!(e.status_code(), 504);
    assert!(e.to_string().contains("bedrock0") && e.to_string().contains("read_timeout"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(2900), "took {:?}", started.elapsed());

    // Once the stream has begun, the timeout arrives as an error item.
    let events: Vec<_> =
        p.chat_completion_stream(&fake_model("fake.stall"), hello(), &ctx).await.unwrap().collect().await;
    assert_eq!(kinds(&events), ["start:", "error:504"]);
}

#[tokio::test]
async fn a_stopped_endpoint_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = Instant::now();
    let p = provider_at(&url, json!({})).await;
    let e = err_of(p.chat_completion(&llama(), hello(), &RequestContext::default()).await);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(e.status_code(), 503);
    assert!(
        matches!(&e, Error::Unavailable { provider, message } if provider == "bedrock0" && message.contains(&url)),
        "{e}"
    );
}

#[tokio::test]
async fn dropping_the_stream_hangs_up_on_bedrock() {
    let (url, fake) = serve_fake().await;
    let p = provider_at(&url, json!({})).await;
    let mut s =
        p.chat_completion_stream(&fake_model("fake.endless"), hello(), &RequestContext::default()).await.unwrap();
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

// ---------------------------------------------------------------- the process environment
//
// The environment is process-wide, so these runs happen in a child process (this test binary
// again, running only `env_child`) whose environment is set up for it.

/// Runs `env_child` in a child process with `vars` (and no other AWS variable, and HOME in an
/// empty folder); returns whether it passed, and what it printed.
fn run_child(mode: &str, vars: &[(&str, String)]) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["env_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.path()).env("BEDROCK_ENV_CHILD", mode);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn the_environment_supplies_endpoint_credentials_and_region() {
    let (url, fake) = serve_fake().await;
    let (ok, out) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            run_child(
                "answer",
                &[
                    ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url),
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_owned()),
                    ("AWS_ACCESS_KEY_ID", "ASIATEMP".to_owned()),
                    ("AWS_SECRET_ACCESS_KEY", "temporary-secret".to_owned()),
                    ("AWS_SESSION_TOKEN", "session-token-1".to_owned()),
                    ("AWS_REGION", REGION.to_owned()),
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(fake.count(LLAMA_8B), 1, "the child's request went to the endpoint from the environment");

    // A named profile in shared files chosen by AWS_PROFILE, the general endpoint variable.
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(&creds, "[default]\naws_access_key_id = AKIDNOBODY\naws_secret_access_key = x\n\n[work]\naws_access_key_id = AKIDTEST\naws_secret_access_key = test/secret+key\n").unwrap();
    std::fs::write(&config, format!("[profile work]\nregion = {REGION}\n")).unwrap();
    let (ok, out) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            run_child(
                "answer",
                &[
                    ("AWS_ENDPOINT_URL", url),
                    ("AWS_PROFILE", "work".to_owned()),
                    ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
                    ("AWS_CONFIG_FILE", config.display().to_string()),
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(fake.count(LLAMA_8B), 2);

    let (ok, out) =
        tokio::task::spawn_blocking(move || run_child("missing", &[("AWS_ENDPOINT_URL", url)])).await.unwrap();
    assert!(ok, "{out}");
    assert_eq!(fake.count(LLAMA_8B), 2, "nothing is sent without credentials");
}

/// The child's side of the test above; does nothing when run any other way.
#[tokio::test]
#[ignore = "run in a child process by the_environment_supplies_endpoint_credentials_and_region"]
async fn env_child() {
    let Ok(mode) = std::env::var("BEDROCK_ENV_CHILD") else { return };
    let p = build(json!({})).await;
    let r = p.chat_completion(&llama(), hello(), &RequestContext::default()).await;
    if mode == "answer" {
        assert_eq!(r.unwrap().completion_message.content.as_text(""), "echo: hello there");
    } else {
        let e = err_of(r).to_string();
        for needle in ["bedrock0", "aws_access_key_id", "AWS_ACCESS_KEY_ID", "region_name", "AWS_REGION"] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
    }
}

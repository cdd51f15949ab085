//! Secrets never leave the process: API keys in provider configs, provider-data header values
//! and kv store passwords are set to recognisable strings, and every output is searched for
//! them: the debug-level log, `/providers/list`, error bodies, kept and exported spans, Debug
//! forms, build errors.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of a test may fail loudly")]

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::kvstore::KvStoreConfig;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::stack::Stack;
use serde_json::json;

mod common;

const CONFIG_KEY: &str = "SEKRIT-config-key-7f3a";
const HEADER_KEY: &str = "SEKRIT-header-key-91cc";
const PG_PASSWORD: &str = "SEKRIT-pg-password-5d20";
const SECRETS: [&str; 3] = [CONFIG_KEY, HEADER_KEY, PG_PASSWORD];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks `{s}`:\n{text}");
    }
}

/// A backend that refuses every key, as a hosted API does for a wrong one.
async fn refuse(headers: HeaderMap) -> Response {
    assert!(headers.contains_key("authorization"));
    (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Invalid API key"}}))).into_response()
}

async fn start_backend() -> String {
    let app = Router::new().route("/v1/completions", post(refuse));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

async fn start_receiver() -> (String, Receiver) {
    // OTLP/HTTP protobuf: strings travel as their UTF-8 bytes, so the text of a body shows them.
    async fn keep(axum::extract::State(r): axum::extract::State<Receiver>, body: axum::body::Bytes) {
        r.0.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
    }
    let r = Receiver::default();
    let app = Router::new().route("/v1/traces", post(keep)).route("/v1/metrics", post(keep)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), r)
}

fn yaml(backend: &str, dir: &std::path::Path, telemetry: &str) -> String {
    format!(
        r"
version: '2'
image_name: secrets
apis: [inference, telemetry]
providers:
  inference:
  - provider_id: together
    provider_type: remote::together
    config: {{url: '{backend}', api_key: {CONFIG_KEY}}}
  telemetry:
  - provider_id: tel
    {telemetry}
models:
- {{identifier: Llama3.1-8B-Instruct, llama_model: Llama3.1-8B-Instruct, provider_id: together}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        dir.display()
    )
}

async fn serve(stack: Arc<Stack>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (base, stop, _task) = common::serve_stack(stack).await;
    (base, stop)
}

/// Everything a client sees from a few requests that carry the secrets.
async fn exercise(base: &str) -> String {
    let http = reqwest::Client::new();
    let mut seen = String::new();
    let header = json!({"together_api_key": HEADER_KEY}).to_string();
    for stream in [false, true] {
        let r = http
            .post(format!("{base}/inference/chat_completion"))
            .header("X-LlamaStack-ProviderData", &header)
            .json(&json!({"model": "Llama3.1-8B-Instruct", "messages": [{"role": "user", "content": "hi"}], "stream": stream}))
            .send()
            .await
            .unwrap();
        let _ = writeln!(seen, "{:?}", r.headers());
        seen.push_str(&r.text().await.unwrap());
    }
    // Without the header: the config's key is used and refused.
    let r = http
        .post(format!("{base}/inference/completion"))
        .json(&json!({"model": "Llama3.1-8B-Instruct", "content": "hi"}))
        .send()
        .await
        .unwrap();
    seen.push_str(&r.text().await.unwrap());
    // Bad input next to a secret.
    let r = http
        .post(format!("{base}/inference/chat_completion"))
        .header("X-LlamaStack-ProviderData", &header)
        .json(&json!({"model": 5, "messages": HEADER_KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    seen.push_str(&r.text().await.unwrap());
    for path in ["/providers/list", "/routes/list", "/models/list"] {
        seen.push_str(&reqwest::get(format!("{base}{path}")).await.unwrap().text().await.unwrap());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_output() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let backend = start_backend().await;

    // A kv store whose password would be printed by a careless error or Debug.
    let pg = format!(
        "provider_type: meta-reference\n    config: {{persistence_store: {{type: postgres, host: 127.0.0.1, port: 1, db: x, user: u, password: {PG_PASSWORD}}}}}"
    );
    let config = StackRunConfig::from_yaml(&yaml(&backend, dir.path(), &pg), "test").unwrap();
    assert_clean("the run config's Debug form", &format!("{config:?}"));
    let err = Stack::build(config).await.err().expect("an unreachable store fails the build");
    assert_clean("a store error", &err.to_string());
    let kv: KvStoreConfig =
        serde_json::from_value(json!({"type": "postgres", "user": "u", "password": PG_PASSWORD})).unwrap();
    assert_clean("a kv store config's Debug form", &format!("{kv:?}"));
    let ctx = RequestContext::from_header(Some(&json!({"together_api_key": HEADER_KEY}).to_string()));
    assert_clean("a request context's Debug form", &format!("{ctx:?}"));

    // The console provider, its kept spans and its printed events.
    let console = format!(
        "provider_type: meta-reference\n    config: {{persistence_store: {{type: sqlite, db_path: '{}/traces.db'}}}}",
        dir.path().display()
    );
    let stack = Arc::new(
        Stack::build(StackRunConfig::from_yaml(&yaml(&backend, dir.path(), &console), "test").unwrap()).await.unwrap(),
    );
    let (base, stop) = serve(stack.clone()).await;
    let seen = exercise(&base).await;
    assert!(seen.contains("Invalid API key"), "the refusal reached the client: {seen}");
    assert_clean("responses", &seen);
    stack.tracer.flush().await;
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("traces.db") {
            db.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(db.windows(15).any(|w| w == b"/providers/list"), "spans were stored");
    assert_clean("the trace store", &String::from_utf8_lossy(&db));
    let _ = stop.send(());

    // The OTLP exporter.
    let (endpoint, receiver) = start_receiver().await;
    let otlp = format!("provider_type: remote::opentelemetry-jaeger\n    config: {{otlp_endpoint: '{endpoint}'}}");
    let stack = Arc::new(
        Stack::build(StackRunConfig::from_yaml(&yaml(&backend, dir.path(), &otlp), "test").unwrap()).await.unwrap(),
    );
    let (base, stop) = serve(stack.clone()).await;
    assert_clean("responses", &exercise(&base).await);
    stack.tracer.flush().await;
    let exported = receiver.0.lock().unwrap().join("\n");
    assert!(exported.contains("inference.chat_completion"), "spans were exported: {exported}");
    assert_clean("exported spans", &exported);
    let _ = stop.send(());

    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("span end"), "the debug log was captured: {log}");
    assert_clean("the debug log", &log);
}

//! Tracing end to end: a root span per request (HTTP and in-process), inference spans under it,
//! client events in the caller's trace, traces kept by `meta-reference` (and read back after a
//! restart from its store), and spans and metrics exported over OTLP/HTTP to a receiver on
//! 127.0.0.1 that decodes them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of a test may fail loudly")]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use llama_stack_rs::api::{self, Args};
use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::stack::Stack;
use serde_json::{Value, json};

mod common;

/// A completions service in Together's wire format (OpenAI-style `/v1/completions`).
async fn completions(Json(body): Json<Value>) -> Response {
    if body["stream"] == json!(true) {
        let mut out = String::new();
        for piece in ["Hello", " there"] {
            let _ = write!(out, "data: {}\n\n", json!({"choices": [{"index": 0, "text": piece}]}));
        }
        let _ = write!(out, "data: {}\n\n", json!({"choices": [{"index": 0, "text": "", "finish_reason": "eos"}]}));
        out.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], Body::from(out)).into_response();
    }
    Json(json!({"id": "c", "object": "text_completion", "model": body["model"],
                "choices": [{"index": 0, "text": "Hello there", "finish_reason": "stop"}]}))
    .into_response()
}

async fn start_backend() -> String {
    let app = Router::new().route("/v1/completions", post(completions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

/// An OTLP/HTTP receiver: keeps every JSON document posted to `/v1/traces` and `/v1/metrics`.
#[derive(Clone, Default)]
struct Receiver {
    traces: Arc<Mutex<Vec<Value>>>,
    metrics: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> (String, Self) {
        async fn traces(State(r): State<Receiver>, Json(v): Json<Value>) -> Json<Value> {
            r.traces.lock().unwrap().push(v);
            Json(json!({}))
        }
        async fn metrics(State(r): State<Receiver>, Json(v): Json<Value>) -> Json<Value> {
            r.metrics.lock().unwrap().push(v);
            Json(json!({}))
        }
        let r = Self::default();
        let app =
            Router::new().route("/v1/traces", post(traces)).route("/v1/metrics", post(metrics)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), r)
    }

    /// Every exported span, flattened.
    fn spans(&self) -> Vec<Value> {
        let docs = self.traces.lock().unwrap().clone();
        let mut out = Vec::new();
        for d in docs {
            for rs in d["resourceSpans"].as_array().unwrap() {
                assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    out.extend(ss["spans"].as_array().unwrap().iter().cloned());
                }
            }
        }
        out
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

fn run_config(backend: &str, dir: &std::path::Path, telemetry: &Value) -> StackRunConfig {
    let yaml = format!(
        r"
version: '2'
image_name: traced
apis: [inference, telemetry]
providers:
  inference:
  - provider_id: together
    provider_type: remote::together
    config: {{url: '{backend}', api_key: key}}
  telemetry:
  - provider_id: tel
    {}
models:
- {{identifier: Llama3.1-8B-Instruct, llama_model: Llama3.1-8B-Instruct, provider_id: together}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        telemetry.as_str().unwrap(),
        dir.display()
    );
    StackRunConfig::from_yaml(&yaml, "test").unwrap()
}

fn meta_reference(dir: &std::path::Path) -> Value {
    Value::String(format!(
        "provider_type: meta-reference\n    config: {{persistence_store: {{type: sqlite, db_path: '{}/traces.db'}}}}",
        dir.display()
    ))
}

async fn serve(stack: Arc<Stack>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (base, stop, _task) = common::serve_stack(stack).await;
    (base, stop)
}

fn chat(stream: bool) -> Value {
    json!({"model": "Llama3.1-8B-Instruct", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

#[tokio::test]
async fn every_request_is_a_trace_and_inference_a_child_span() {
    let dir = tempfile::tempdir().unwrap();
    let backend = start_backend().await;
    let stack = Arc::new(Stack::build(run_config(&backend, dir.path(), &meta_reference(dir.path()))).await.unwrap());
    let (base, stop) = serve(stack.clone()).await;
    let http = reqwest::Client::new();

    // Non-streaming: the response names its trace.
    let r = http.post(format!("{base}/inference/chat_completion")).json(&chat(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let trace_id = r.headers()["x-llamastack-trace-id"].to_str().unwrap().to_owned();
    assert_eq!(trace_id.len(), 12);
    let _ = r.text().await.unwrap();

    // Streaming: the span stays open until the stream ends.
    let r = http.post(format!("{base}/inference/chat_completion")).json(&chat(true)).send().await.unwrap();
    let streamed = r.headers()["x-llamastack-trace-id"].to_str().unwrap().to_owned();
    assert_ne!(streamed, trace_id);
    let _ = r.text().await.unwrap();

    // A client event with no ids joins the trace of the call that carries it; one naming a
    // trace joins that trace.
    let r = http
        .post(format!("{base}/telemetry/log_event"))
        .header("x-llamastack-trace-id", &trace_id)
        .json(&json!({"event": {"type": "structured_log", "trace_id": "", "span_id": "",
            "timestamp": "2024-10-10T12:00:00", "payload": {"type": "span_start", "name": "client.step"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    stack.tracer.flush().await;

    let t: Value =
        http.get(format!("{base}/telemetry/get_trace?trace_id={trace_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(t["trace_id"], trace_id);
    assert!(t["end_time"].is_string(), "{t}");
    let root = t["root_span_id"].as_str().unwrap().to_owned();

    // The spans as the store holds them: root, inference under it, the client's span in the same
    // trace (under the log_event call's span, which joined the trace).
    let console = llama_stack_rs::telemetry::console::ConsoleTelemetry::build(
        &serde_json::from_value(
            json!({"persistence_store": {"type": "sqlite", "db_path": format!("{}/traces.db", dir.path().display())}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let spans = console.spans(&trace_id).await.unwrap();
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("no span {n} in {spans:?}"));
    let http_span = by_name("/inference/chat_completion");
    assert_eq!(http_span.span_id, root);
    assert_eq!(http_span.parent_span_id, None);
    let inference = by_name("inference.chat_completion");
    assert_eq!(inference.parent_span_id.as_deref(), Some(root.as_str()));
    assert_eq!(inference.attributes.as_ref().unwrap()["model_id"], "Llama3.1-8B-Instruct");
    assert!(inference.end_time.is_some());
    let log_call = by_name("/telemetry/log_event");
    let client = by_name("client.step");
    assert_eq!(client.parent_span_id.as_deref(), Some(log_call.span_id.as_str()));
    assert_ne!(client.span_id, log_call.span_id);
    assert_eq!(log_call.trace_id, trace_id);

    let streamed_spans = console.spans(&streamed).await.unwrap();
    let names: Vec<&str> = streamed_spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["/inference/chat_completion", "inference.chat_completion"]);
    assert!(streamed_spans.iter().all(|s| s.end_time.is_some()), "{streamed_spans:?}");

    // An unknown trace is a 400 naming it.
    let r = http.get(format!("{base}/telemetry/get_trace?trace_id=nope")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("nope"));
    let _ = stop.send(());
    stack.shutdown().await;
    drop(stack);

    // After a restart the trace is read from the store.
    let again = Stack::build(run_config(&backend, dir.path(), &meta_reference(dir.path()))).await.unwrap();
    let t2 = again.telemetry.as_ref().unwrap().get_trace(&trace_id).await.unwrap();
    assert_eq!(serde_json::to_value(&t2).unwrap(), t);
}

#[tokio::test]
async fn in_process_calls_are_traced_too_and_errors_mark_the_span() {
    let dir = tempfile::tempdir().unwrap();
    let backend = start_backend().await;
    let stack = Arc::new(Stack::build(run_config(&backend, dir.path(), &meta_reference(dir.path()))).await.unwrap());
    let ops = api::operations();
    let op = ops.iter().find(|o| o.path == "/inference/chat_completion").unwrap();
    let mut ctx = RequestContext::default();
    let outer = stack.tracer.root("caller", None);
    ctx.trace = outer.context();
    let body = serde_json::to_vec(&json!({"model": "unknown-model", "messages": []})).unwrap();
    assert!(api::dispatch(op, stack.clone(), Args::new(body.into(), vec![]), ctx).await.is_err());
    let trace_id = outer.trace_id().unwrap().to_owned();
    drop(outer);
    stack.tracer.flush().await;
    let console = llama_stack_rs::telemetry::console::ConsoleTelemetry::build(
        &serde_json::from_value(
            json!({"persistence_store": {"type": "sqlite", "db_path": format!("{}/traces.db", dir.path().display())}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let spans = console.spans(&trace_id).await.unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["caller", "/inference/chat_completion"]);
    assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id.clone()));
}

#[tokio::test]
async fn spans_and_metrics_are_exported_over_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let backend = start_backend().await;
    let (endpoint, receiver) = Receiver::start().await;
    let tel = Value::String(format!(
        "provider_type: remote::opentelemetry-jaeger\n    config: {{otlp_endpoint: '{endpoint}', service_name: test-svc}}"
    ));
    let stack = Arc::new(Stack::build(run_config(&backend, dir.path(), &tel)).await.unwrap());
    let (base, stop) = serve(stack.clone()).await;
    let http = reqwest::Client::new();
    let r = http.post(format!("{base}/inference/chat_completion")).json(&chat(true)).send().await.unwrap();
    let trace_id = r.headers()["x-llamastack-trace-id"].to_str().unwrap().to_owned();
    let _ = r.text().await.unwrap();
    let r = http
        .post(format!("{base}/telemetry/log_event"))
        .header("x-llamastack-trace-id", &trace_id)
        .json(&json!({"event": {"type": "metric", "trace_id": "", "span_id": "", "timestamp": "2024-10-10T12:00:00Z",
            "metric": "tokens", "value": 42, "unit": "count"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // get_trace is for the stores that keep traces.
    let r = http.get(format!("{base}/telemetry/get_trace?trace_id={trace_id}")).send().await.unwrap();
    assert_eq!(r.status(), 501);
    stack.tracer.flush().await;

    let spans = receiver.spans();
    let ours: Vec<&Value> =
        spans.iter().filter(|s| attr(s, "llama_stack.trace_id") == Some(&json!({"stringValue": trace_id}))).collect();
    let root = ours.iter().find(|s| s["name"] == "/inference/chat_completion").expect("root span exported");
    let child = ours.iter().find(|s| s["name"] == "inference.chat_completion").expect("inference span exported");
    assert_eq!(root["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(root["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(child["traceId"], root["traceId"]);
    assert_eq!(child["parentSpanId"], root["spanId"]);
    assert_eq!(child["status"]["code"], 1);
    assert_eq!(attr(child, "model_id"), Some(&json!({"stringValue": "Llama3.1-8B-Instruct"})));
    let start: u64 = child["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = child["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 1_600_000_000_000_000_000 && end >= start);
    assert_eq!(
        receiver.traces.lock().unwrap()[0]["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "test-svc"
    );

    let metrics = receiver.metrics.lock().unwrap().clone();
    let m = &metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(m["name"], "tokens");
    assert_eq!(m["unit"], "count");
    assert_eq!(m["gauge"]["dataPoints"][0]["asDouble"], 42.0);
    let _ = stop.send(());
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    struct Slow;
    #[async_trait::async_trait]
    impl llama_stack_rs::providers::telemetry::TelemetryProvider for Slow {
        async fn log_event(&self, _: llama_stack_rs::types::telemetry::Event) -> llama_stack_rs::error::Result<()> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        async fn get_trace(&self, _: &str) -> llama_stack_rs::error::Result<llama_stack_rs::types::telemetry::Trace> {
            unreachable!()
        }
    }
    let tracer = llama_stack_rs::telemetry::Tracer::with_capacity(Arc::new(Slow), 4);
    for _ in 0..20 {
        let root = tracer.root("r", None);
        let _child = root.child("c");
    }
    assert!(tracer.dropped() >= 70, "dropped {}", tracer.dropped());
}

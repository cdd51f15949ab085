//! Tracing end to end: a root span per request (HTTP and in-process), inference spans under it,
//! client events in the caller's trace, traces kept by `meta-reference` (and read back after a
//! restart from its store), an agent turn as one nested trace whose request span covers the whole
//! streamed body (also when the client leaves early), and spans and metrics exported over
//! OTLP/HTTP (protobuf) to a receiver on 127.0.0.1 that decodes them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of a test may fail loudly")]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use llama_stack_rs::api::{self, Args};
use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::stack::Stack;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message as _;
use serde_json::{Value, json};

mod common;

/// A completions service in Together's wire format (OpenAI-style `/v1/completions`). A prompt
/// asking to answer "slowly" streams ten pieces 100 ms apart.
async fn completions(Json(body): Json<Value>) -> Response {
    if body["stream"] == json!(true) && body["prompt"].as_str().unwrap_or_default().contains("slowly") {
        let pieces = futures::stream::iter(0..11).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let event = if i < 10 {
                json!({"choices": [{"index": 0, "text": format!(" w{i}")}]})
            } else {
                json!({"choices": [{"index": 0, "text": "", "finish_reason": "eos"}]})
            };
            Ok::<_, std::convert::Infallible>(format!("data: {event}\n\n"))
        });
        let done = futures::stream::once(async { Ok("data: [DONE]\n\n".to_owned()) });
        return ([("content-type", "text/event-stream")], Body::from_stream(pieces.chain(done))).into_response();
    }
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

/// An OTLP/HTTP receiver: decodes every protobuf export request posted to `/v1/traces` and
/// `/v1/metrics` and answers as a collector does.
#[derive(Clone, Default)]
struct Receiver {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    /// Bodies that were not protobuf or did not decode.
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> (String, Self) {
        fn protobuf(headers: &HeaderMap) -> bool {
            headers.get("content-type").is_some_and(|v| v == "application/x-protobuf")
        }
        async fn traces(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
            match ExportTraceServiceRequest::decode(body) {
                Ok(req) if protobuf(&headers) => r.traces.lock().unwrap().push(req),
                other => r.rejected.lock().unwrap().push(format!("traces: {headers:?} {:?}", other.err())),
            }
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            ([("content-type", "application/x-protobuf")], answer).into_response()
        }
        async fn metrics(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
            match ExportMetricsServiceRequest::decode(body) {
                Ok(req) if protobuf(&headers) => r.metrics.lock().unwrap().push(req),
                other => r.rejected.lock().unwrap().push(format!("metrics: {headers:?} {:?}", other.err())),
            }
            let answer = ExportMetricsServiceResponse::default().encode_to_vec();
            ([("content-type", "application/x-protobuf")], answer).into_response()
        }
        let r = Self::default();
        let app =
            Router::new().route("/v1/traces", post(traces)).route("/v1/metrics", post(metrics)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), r)
    }

    /// Every exported span with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for req in self.traces.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let service = rs.resource.as_ref().and_then(|r| string_attr(&r.attributes, "service.name"));
                for ss in &rs.scope_spans {
                    assert_eq!(ss.scope.as_ref().unwrap().name, "llama-stack-rs");
                    out.extend(ss.spans.iter().map(|s| (service.clone().unwrap_or_default(), s.clone())));
                }
            }
        }
        out
    }

    /// Every exported metric.
    fn metrics(&self) -> Vec<Metric> {
        let reqs = self.metrics.lock().unwrap();
        let scopes = reqs.iter().flat_map(|r| &r.resource_metrics).flat_map(|rm| &rm.scope_metrics);
        scopes.flat_map(|sm| sm.metrics.iter().cloned()).collect()
    }
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
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

fn agents_run_config(backend: &str, dir: &std::path::Path) -> StackRunConfig {
    let yaml = format!(
        r"
version: '2'
image_name: traced-agents
apis: [inference, agents, telemetry]
providers:
  inference:
  - provider_id: together
    provider_type: remote::together
    config: {{url: '{backend}', api_key: key}}
  agents:
  - provider_id: agents
    provider_type: meta-reference
    config: {{persistence_store: {{type: sqlite, db_path: '{d}/agents.db'}}}}
  telemetry:
  - provider_id: tel
    provider_type: meta-reference
    config: {{persistence_store: {{type: sqlite, db_path: '{d}/traces.db'}}}}
models:
- {{identifier: Llama3.1-8B-Instruct, llama_model: Llama3.1-8B-Instruct, provider_id: together}}
metadata_store:
  type: sqlite
  db_path: {d}/registry.db
",
        d = dir.display()
    );
    StackRunConfig::from_yaml(&yaml, "test").unwrap()
}

async fn post_json(http: &reqwest::Client, url: String, body: Value) -> Value {
    let r = http.post(url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Checks that the spans of one trace nest: one root, every other span's parent in the trace,
/// each span inside its parent's time, all ended. Answers the spans by name.
fn check_nesting(spans: &[llama_stack_rs::types::telemetry::Span]) -> std::collections::HashMap<String, usize> {
    let roots: Vec<_> = spans.iter().filter(|s| s.parent_span_id.is_none()).collect();
    assert_eq!(roots.len(), 1, "{spans:?}");
    for s in spans {
        assert!(s.end_time.is_some(), "span {} did not end: {spans:?}", s.name);
        let end = s.end_time.as_ref().unwrap();
        let Some(parent) = &s.parent_span_id else { continue };
        let p = spans.iter().find(|p| &p.span_id == parent);
        assert!(p.is_some(), "no parent of {} in {spans:?}", s.name);
        let p = p.unwrap();
        let p_end = p.end_time.as_ref().unwrap();
        // Timestamps are fixed-width UTC strings: their order is the times' order.
        assert!(p.start_time.as_str() <= s.start_time.as_str(), "{} starts before {}", s.name, p.name);
        assert!(
            p_end.as_str() >= end.as_str(),
            "{} ({}) ends after its parent {} ({})",
            s.name,
            end.as_str(),
            p.name,
            p_end.as_str()
        );
    }
    spans.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect()
}

#[tokio::test]
async fn an_agent_turn_is_one_trace_whose_request_span_covers_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let backend = start_backend().await;
    let stack = Arc::new(Stack::build(agents_run_config(&backend, dir.path())).await.unwrap());
    let (base, stop) = serve(stack.clone()).await;
    let http = reqwest::Client::new();
    let agent = post_json(
        &http,
        format!("{base}/agents/create"),
        json!({"agent_config": {
        "model": "Llama3.1-8B-Instruct", "instructions": "Be brief.", "enable_session_persistence": false}}),
    )
    .await;
    let agent_id = agent["agent_id"].as_str().unwrap().to_owned();
    let session = post_json(
        &http,
        format!("{base}/agents/session/create"),
        json!({"agent_id": agent_id, "session_name": "traced"}),
    )
    .await;
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    let turn = |text: &str| {
        json!({"agent_id": agent_id, "session_id": session_id, "stream": true,
               "messages": [{"role": "user", "content": text}]})
    };
    let console = llama_stack_rs::telemetry::console::ConsoleTelemetry::build(
        &serde_json::from_value(
            json!({"persistence_store": {"type": "sqlite", "db_path": format!("{}/traces.db", dir.path().display())}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();

    // A turn read to its end: request span → agents.turn → agents.inference, all nested.
    let r = http.post(format!("{base}/agents/turn/create")).json(&turn("hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let trace_id = r.headers()["x-llamastack-trace-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains("turn_complete"), "{body}");
    stack.tracer.flush().await;
    let spans = console.spans(&trace_id).await.unwrap();
    let by_name = check_nesting(&spans);
    let span = |n: &str| &spans[*by_name.get(n).unwrap_or_else(|| panic!("no span {n} in {spans:?}"))];
    let root = span("/agents/turn/create");
    assert_eq!(span("agents.turn").parent_span_id.as_deref(), Some(root.span_id.as_str()));
    assert_eq!(span("agents.turn").attributes.as_ref().unwrap()["agent_id"], json!(agent_id));
    assert_eq!(span("agents.inference").parent_span_id.as_deref(), Some(span("agents.turn").span_id.as_str()));
    let trace = stack.telemetry.as_ref().unwrap().get_trace(&trace_id).await.unwrap();
    assert_eq!(trace.root_span_id, root.span_id);
    assert_eq!(trace.end_time, root.end_time);

    // A client that leaves after the first event: the turn runs on to its end, and the request's
    // span stays open until it has (the stream is answered slowly, 100 ms a piece).
    let mut r = http.post(format!("{base}/agents/turn/create")).json(&turn("answer slowly")).send().await.unwrap();
    let left = r.headers()["x-llamastack-trace-id"].to_str().unwrap().to_owned();
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        stack.tracer.flush().await;
        let spans = console.spans(&left).await.unwrap();
        if spans.iter().any(|s| s.parent_span_id.is_none() && s.end_time.is_some()) {
            break spans;
        }
        assert!(std::time::Instant::now() < deadline, "the request span never ended: {spans:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by_name = check_nesting(&spans);
    assert!(by_name.contains_key("agents.turn") && by_name.contains_key("agents.inference"), "{spans:?}");
    // The turn finished and was stored although nobody read it.
    let session =
        post_json(&http, format!("{base}/agents/session/get?agent_id={agent_id}&session_id={session_id}"), json!({}))
            .await;
    assert_eq!(session["turns"].as_array().unwrap().len(), 2, "{session}");
    let _ = stop.send(());
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
    // Client events in the same trace: a span of the client's own under the request's root, a
    // log inside it, and two metrics (an integer counts, a fraction is a gauge).
    let root_id = {
        stack.tracer.flush().await;
        let exported = receiver.spans();
        let root = exported.iter().find(|(_, s)| s.name == "/inference/chat_completion").map(|(_, s)| s.clone());
        root.map(|s| s.attributes).and_then(|a| string_attr(&a, "llama_stack.span_id")).expect("root exported")
    };
    let events = [
        json!({"type": "structured_log", "trace_id": trace_id, "span_id": "clientspan01",
               "timestamp": "2024-10-10T12:00:00Z", "attributes": {"step": 3, "ok": true},
               "payload": {"type": "span_start", "name": "client.step", "parent_span_id": root_id}}),
        json!({"type": "unstructured_log", "trace_id": trace_id, "span_id": "clientspan01",
               "timestamp": "2024-10-10T12:00:01Z", "message": "halfway", "severity": "warn"}),
        json!({"type": "structured_log", "trace_id": trace_id, "span_id": "clientspan01",
               "timestamp": "2024-10-10T12:00:02Z", "payload": {"type": "span_end", "status": "error"}}),
        json!({"type": "metric", "trace_id": "", "span_id": "", "timestamp": "2024-10-10T12:00:00Z",
               "metric": "tokens", "value": 40, "unit": "count", "attributes": {"model": "m"}}),
        json!({"type": "metric", "trace_id": "", "span_id": "", "timestamp": "2024-10-10T12:00:00Z",
               "metric": "tokens", "value": 2, "unit": "count", "attributes": {"model": "m"}}),
        json!({"type": "metric", "trace_id": "", "span_id": "", "timestamp": "2024-10-10T12:00:00Z",
               "metric": "load", "value": 0.25, "unit": "ratio"}),
    ];
    for event in events {
        let r = http
            .post(format!("{base}/telemetry/log_event"))
            .header("x-llamastack-trace-id", &trace_id)
            .json(&json!({"event": event}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // get_trace is for the stores that keep traces.
    let r = http.get(format!("{base}/telemetry/get_trace?trace_id={trace_id}")).send().await.unwrap();
    assert_eq!(r.status(), 501);
    stack.tracer.flush().await;
    assert!(receiver.rejected.lock().unwrap().is_empty(), "{:?}", receiver.rejected.lock().unwrap());

    let spans = receiver.spans();
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|(svc, s)| {
            svc == "test-svc" && string_attr(&s.attributes, "llama_stack.trace_id").as_deref() == Some(&trace_id)
        })
        .map(|(_, s)| s)
        .collect();
    let named = |n: &str| *ours.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("no span {n} in {ours:?}"));
    let root = named("/inference/chat_completion");
    let child = named("inference.chat_completion");
    let client = named("client.step");
    assert_eq!(root.trace_id.len(), 16);
    assert_eq!(root.span_id.len(), 8);
    // The OTLP ids are the short ids' first bytes as a number.
    assert_eq!(root.trace_id[4..], *trace_id.as_bytes());
    assert_eq!(root.span_id, root_id.as_bytes()[..8]);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.kind, span::SpanKind::Server as i32);
    assert_eq!(child.trace_id, root.trace_id);
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!(child.kind, span::SpanKind::Internal as i32);
    assert_eq!(child.status.as_ref().unwrap().code, status::StatusCode::Ok as i32);
    assert_eq!(string_attr(&child.attributes, "model_id").as_deref(), Some("Llama3.1-8B-Instruct"));
    assert!(child.start_time_unix_nano > 1_600_000_000_000_000_000);
    assert!(child.end_time_unix_nano >= child.start_time_unix_nano);
    assert!(root.start_time_unix_nano <= child.start_time_unix_nano);
    assert!(root.end_time_unix_nano >= child.end_time_unix_nano);

    // The client's span: its parent, times, attributes of each type, its log as an event.
    assert_eq!(client.trace_id, root.trace_id);
    assert_eq!(client.parent_span_id, root.span_id);
    assert_eq!(client.span_id, b"clientsp");
    assert_eq!(client.status.as_ref().unwrap().code, status::StatusCode::Error as i32);
    assert_eq!(client.start_time_unix_nano, 1_728_561_600_000_000_000);
    assert_eq!(client.end_time_unix_nano, 1_728_561_602_000_000_000);
    let attr = |key: &str| client.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()?.value);
    assert_eq!(attr("step"), Some(any_value::Value::IntValue(3)));
    assert_eq!(attr("ok"), Some(any_value::Value::BoolValue(true)));
    assert_eq!(client.events.len(), 1, "{:?}", client.events);
    assert_eq!(client.events[0].name, "halfway");
    assert_eq!(client.events[0].time_unix_nano, 1_728_561_601_000_000_000);
    assert_eq!(string_attr(&client.events[0].attributes, "severity").as_deref(), Some("warn"));

    // Metrics: the integer events add up in a counter, the fraction is a gauge.
    let metrics = receiver.metrics();
    let tokens = metrics.iter().rev().find(|m| m.name == "tokens").expect("tokens exported");
    assert_eq!(tokens.unit, "count");
    let Some(metric::Data::Sum(sum)) = &tokens.data else { panic!("tokens is not a sum: {tokens:?}") };
    assert!(sum.is_monotonic);
    assert_eq!(sum.data_points.len(), 1);
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsInt(42)));
    assert_eq!(string_attr(&sum.data_points[0].attributes, "model").as_deref(), Some("m"));
    let load = metrics.iter().rev().find(|m| m.name == "load").expect("load exported");
    let Some(metric::Data::Gauge(gauge)) = &load.data else { panic!("load is not a gauge: {load:?}") };
    assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsDouble(0.25)));
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

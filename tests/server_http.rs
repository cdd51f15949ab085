//! The HTTP server booted on an ephemeral port: routes, error shapes, limits, inspect, panics
//! and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "helpers of a test may fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::server;
use llama_stack_rs::stack::Stack;
use serde_json::{Value, json};

mod common;

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("server stops").expect("join");
    }
}

async fn start(yaml: &str) -> Running {
    let config = StackRunConfig::from_yaml(yaml, "test").unwrap();
    let stack = Arc::new(Stack::build(config).await.unwrap());
    let (base, tx, task) = common::serve_stack(stack).await;
    Running { base, stop: Some(tx), task }
}

fn config(dir: &std::path::Path) -> String {
    format!(
        r"
version: '2'
image_name: test
apis: [inference, telemetry]
providers:
  telemetry:
  - provider_id: console
    provider_type: meta-reference
    config: {{}}
  inference:
  - provider_id: secret-one
    provider_type: remote::together
    config: {{api_key: sk-very-secret}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        dir.display()
    )
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn inspect_routes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&config(dir.path())).await;

    assert_eq!(get(&s.base, "/health").await, (200, json!({"status": "OK"})));

    let (st, providers) = get(&s.base, "/providers/list").await;
    assert_eq!(st, 200);
    assert_eq!(providers["inference"], json!([{"provider_id": "secret-one", "provider_type": "remote::together"}]));
    assert!(!providers.to_string().contains("sk-very-secret"), "a provider config leaked: {providers}");

    let (st, routes) = get(&s.base, "/routes/list").await;
    assert_eq!(st, 200);
    let apis: Vec<&str> = routes.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(apis.len(), 9, "{apis:?}");
    let chat =
        routes["inference"].as_array().unwrap().iter().find(|r| r["route"] == "/inference/chat_completion").unwrap();
    assert_eq!(chat["method"], "post");
    assert_eq!(chat["provider_types"], json!(["remote::together"]));

    // Lists are plain arrays (here: the models Together hosts, under Llama ids); get of an
    // unknown id is null.
    let (st, models) = get(&s.base, "/models/list").await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = models.as_array().unwrap().iter().filter_map(|m| m["identifier"].as_str()).collect();
    assert!(ids.contains(&"Llama3.1-8B-Instruct") && ids.len() == 6, "{models}");
    assert!(models.as_array().unwrap().iter().all(|m| m["provider_id"] == "secret-one"), "{models}");
    assert_eq!(get(&s.base, "/models/get?identifier=nope").await, (200, Value::Null));
    assert_eq!(get(&s.base, "/shields/get?shield_type=nope").await, (200, Value::Null));

    // Missing query parameter: 400 in the validation shape, naming it.
    let (st, body) = get(&s.base, "/models/get").await;
    assert_eq!(st, 400);
    assert_eq!(body["error"]["detail"]["errors"][0]["loc"], json!(["query", "identifier"]));

    // Bad JSON, wrong type, missing field: 400 naming the path.
    let (st, body) = post(&s.base, "/models/register", "{not json").await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = post(&s.base, "/models/register", r#"{"model": {"identifier": 5, "llama_model": "x"}}"#).await;
    assert_eq!(st, 400);
    assert_eq!(body["error"]["detail"]["errors"][0]["loc"], json!(["body", "model", "identifier"]), "{body}");
    let (st, body) = post(&s.base, "/models/register", r#"{"model": {"identifier": "m"}}"#).await;
    assert_eq!(st, 400);
    assert!(body.to_string().contains("llama_model"), "{body}");

    // A model no provider serves: 400 naming it and listing those that are served.
    let (st, body) = post(&s.base, "/inference/chat_completion", r#"{"model": "m", "messages": []}"#).await;
    assert_eq!(st, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("`m`") && detail.contains("Llama3.1-8B-Instruct"), "{body}");

    // Declared-only routes: 501 naming the route. Agents not configured: 501 saying so.
    let (st, body) = post(&s.base, "/datasets/create", "{}").await;
    assert_eq!(st, 501);
    assert!(body["detail"].as_str().unwrap().contains("/datasets/create"), "{body}");
    let (st, body) = post(&s.base, "/agents/create", "{}").await;
    assert_eq!(st, 501);
    assert!(body["detail"].as_str().unwrap().contains("providers.agents"), "{body}");
    // turn/get by GET (the spec and client) and POST (upstream's server) both reach the route.
    assert_eq!(get(&s.base, "/agents/turn/get?agent_id=a&session_id=s&turn_id=t").await.0, 501);
    assert_eq!(post(&s.base, "/agents/turn/get", r#"{"agent_id": "a"}"#).await.0, 501);

    // Unknown path 404, wrong method 405, both JSON.
    let (st, body) = get(&s.base, "/no/such/route").await;
    assert_eq!(st, 404);
    assert!(body["detail"].is_string());
    let (st, body) = get(&s.base, "/models/register").await;
    assert_eq!(st, 405);
    assert!(body["detail"].is_string());

    // Oversized body: 413.
    let big = format!(r#"{{"model": {{"identifier": "{}"}}}}"#, "x".repeat(server::MAX_BODY_BYTES + 10));
    assert_eq!(post(&s.base, "/models/register", &big).await.0, 413);

    // Telemetry: events accepted; a root span becomes a trace.
    let start_event = json!({"event": {"type": "structured_log", "trace_id": "t1", "span_id": "s1",
        "timestamp": "2024-10-10T00:00:00Z", "payload": {"type": "span_start", "name": "root"}}});
    assert_eq!(post(&s.base, "/telemetry/log_event", &start_event.to_string()).await.0, 200);
    let (st, trace) = get(&s.base, "/telemetry/get_trace?trace_id=t1").await;
    assert_eq!(st, 200);
    assert_eq!(trace["root_span_id"], "s1");

    // The OpenAPI document is served.
    let (st, doc) = get(&s.base, "/openapi.json").await;
    assert_eq!(st, 200);
    assert!(doc["paths"].as_object().unwrap().len() >= 50);

    s.shutdown().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    use futures::FutureExt;
    use llama_stack_rs::api::{Group, Method, operations};

    let dir = tempfile::tempdir().unwrap();
    let config = StackRunConfig::from_yaml(&config(dir.path()), "test").unwrap();
    let stack = Arc::new(Stack::build(config).await.unwrap());
    let mut ops = operations();
    ops.push(Method {
        path: "/boom",
        method: http::Method::GET,
        both: false,
        group: Group::Extension("test"),
        handler: |_, _, _| {
            async move {
                #[allow(clippy::panic, reason = "the test needs a handler that panics")]
                {
                    panic!("boom")
                }
            }
            .boxed()
        },
    });
    let app = server::router_for(stack, ops);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (st, body) = get(&base, "/boom").await;
    assert_eq!(st, 500);
    assert!(body["detail"].as_str().unwrap().contains("Internal server error"));
    assert_eq!(get(&base, "/health").await.0, 200);
}

#[tokio::test]
async fn a_provider_that_cannot_run_here_answers_501_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(dir.path()).replace(
        "provider_id: secret-one\n    provider_type: remote::together\n    config: {api_key: sk-very-secret}",
        "provider_id: gpu-box\n    provider_type: vllm\n    config: {}",
    );
    assert!(yaml.contains("gpu-box"));
    let s = start(&yaml).await;
    assert_eq!(get(&s.base, "/models/list").await, (200, json!([])));
    let (st, body) = post(&s.base, "/inference/chat_completion", r#"{"model": "m", "messages": []}"#).await;
    assert_eq!(st, 501, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("gpu-box") && detail.contains("remote::openai"), "{body}");
    s.shutdown().await;
}

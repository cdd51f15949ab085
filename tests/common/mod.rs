//! Helpers the provider integration tests share: a record of what a fake backend was sent, a
//! flag a fake's streaming body raises when the client goes away, and small request builders.
#![allow(dead_code, reason = "each test binary uses its own subset")]
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use llama_stack_rs::error::Error;
use llama_stack_rs::types::inference::{ChatCompletionRequest, ChatCompletionResponseStreamChunk, EventDelta};
use serde_json::{Value, json};

/// What a fake backend was sent: (path, JSON body) in order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, Value)>>>);

impl Seen {
    pub fn record(&self, path: &str, body: &Value) {
        self.0.lock().unwrap().push((path.to_owned(), body.clone()));
    }

    /// The last body sent to `path` (null when none was).
    pub fn last(&self, path: &str) -> Value {
        let seen = self.0.lock().unwrap();
        seen.iter().rev().find(|(p, _)| p == path).map_or(Value::Null, |(_, b)| b.clone())
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Raised when a fake's streamed body is dropped, i.e. the client hung up.
#[derive(Clone, Default)]
pub struct HungUp(Arc<AtomicBool>);

/// Held by a streamed body; dropping it raises the flag.
pub struct HangUpGuard(Arc<AtomicBool>);

impl Drop for HangUpGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl HungUp {
    pub fn guard(&self) -> HangUpGuard {
        HangUpGuard(Arc::clone(&self.0))
    }

    pub fn happened(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn chat_req(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

pub fn weather_tool() -> Value {
    json!({"tool_name": "get_weather", "description": "Current weather",
           "parameters": {"city": {"param_type": "str", "description": "City name"}}})
}

pub fn err_of<T>(r: Result<T, Error>) -> Error {
    match r {
        Ok(_) => unreachable!("expected an error"),
        Err(e) => e,
    }
}

/// A stream's events in short (`progress:text`, `progress:tool:<status>`, `error:<status>`).
pub fn kinds(events: &[Result<ChatCompletionResponseStreamChunk, Error>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Ok(c) => match &c.event.delta {
                EventDelta::Text(t) => format!("{}:{t}", c.event.event_type),
                EventDelta::ToolCall(d) => format!("{}:tool:{}", c.event.event_type, d.parse_status),
            },
            Err(e) => format!("error:{}", e.status_code()),
        })
        .collect()
}

/// A stack served over HTTP on a free port of 127.0.0.1: its base URL once `/health` answers,
/// the sender that stops it (sending or dropping it), and the server's task.
pub async fn serve_stack(
    stack: Arc<llama_stack_rs::stack::Stack>,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = llama_stack_rs::server::ServeOptions { host: Some("127.0.0.1".into()), port, disable_ipv6: true };
    let task = tokio::spawn(async move {
        llama_stack_rs::server::serve(stack, opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    (base, tx, task)
}

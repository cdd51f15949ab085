//! `remote::opentelemetry-jaeger`: spans and metrics exported over OTLP/HTTP with the JSON
//! encoding (`application/json`, OTLP 1.x), which Jaeger (port 4318), the OpenTelemetry
//! Collector and most backends accept. Events are batched in memory (bounded) and posted to
//! `{endpoint}/v1/traces` and `{endpoint}/v1/metrics` once a second and on flush.
//!
//! Ids: trace and span ids here are short strings; OTLP wants 16 and 8 bytes. The string's bytes
//! read as a big-endian number, kept to 128 (trace) or 64 (span) bits, give the OTLP id, so
//! the same string always maps to the same id; the original ids travel as the attributes
//! `llama_stack.trace_id` and `llama_stack.span_id`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::providers::telemetry::TelemetryProvider;
use crate::types::common::{JsonObject, Timestamp};
use crate::types::telemetry::{Event, SpanStatus, StructuredLogPayload, Trace};

/// Upstream's default, the Jaeger agent's UDP (thrift) port, which this build does not speak.
const JAEGER_AGENT_PORT: u16 = 6831;
/// Jaeger's OTLP/HTTP port.
const OTLP_HTTP_PORT: u16 = 4318;
/// Spans waiting for their end; beyond this the oldest starts are forgotten.
const MAX_OPEN_SPANS: usize = 16_384;
/// Finished spans or metric points waiting for export; beyond this new ones are dropped.
const MAX_PENDING: usize = 16_384;
/// Largest batch in one request.
const BATCH: usize = 2048;

fn default_host() -> String {
    "localhost".into()
}
fn default_port() -> u16 {
    JAEGER_AGENT_PORT
}
fn default_service() -> String {
    "llama-stack".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct OtlpConfig {
    #[serde(default = "default_host")]
    pub jaeger_host: String,
    /// Upstream's 6831 (the agent's UDP port) is read as "Jaeger's OTLP/HTTP port", 4318.
    #[serde(default = "default_port")]
    pub jaeger_port: u16,
    /// Base URL of an OTLP/HTTP receiver (e.g. `http://collector:4318`); overrides host and port.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    #[serde(default = "default_service")]
    pub service_name: String,
}

impl OtlpConfig {
    /// The OTLP/HTTP base URL this config points at.
    pub fn endpoint(&self) -> String {
        if let Some(e) = self.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
            return e.trim_end_matches('/').to_owned();
        }
        let port = if self.jaeger_port == JAEGER_AGENT_PORT { OTLP_HTTP_PORT } else { self.jaeger_port };
        format!("http://{}:{port}", self.jaeger_host)
    }
}

struct Open {
    name: String,
    parent: Option<String>,
    start_ns: u64,
    attributes: Option<JsonObject>,
    events: Vec<Value>,
}

#[derive(Default)]
struct Pending {
    open: HashMap<(String, String), Open>,
    open_order: std::collections::VecDeque<(String, String)>,
    spans: Vec<Value>,
    metrics: Vec<Value>,
    dropped: u64,
}

struct Exporter {
    client: reqwest::Client,
    endpoint: String,
    resource: Value,
    pending: Mutex<Pending>,
    export_lock: tokio::sync::Mutex<()>,
}

/// The OTLP exporter provider.
pub struct OtlpTelemetry {
    inner: Arc<Exporter>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpTelemetry {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// A time as nanoseconds since the epoch (naive times are UTC).
fn unix_nanos(t: &Timestamp) -> u64 {
    let s = t.as_str();
    let dt = chrono::DateTime::parse_from_rfc3339(s).map(|d| d.naive_utc()).or_else(|_| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
    });
    dt.ok().and_then(|d| d.and_utc().timestamp_nanos_opt()).and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// The id string's bytes as a big-endian number, kept to `width` bytes, in hex.
pub fn otlp_id(id: &str, width: usize) -> String {
    let bytes = id.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(width)..];
    let mut out = String::with_capacity(width * 2);
    for _ in tail.len()..width {
        out.push_str("00");
    }
    for b in tail {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn any_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64()}),
        other => json!({"stringValue": other.to_string()}),
    }
}

fn attributes(attrs: Option<&JsonObject>, extra: &[(&str, &str)]) -> Vec<Value> {
    let mut out: Vec<Value> = extra.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect();
    if let Some(a) = attrs {
        out.extend(a.iter().map(|(k, v)| json!({"key": k, "value": any_value(v)})));
    }
    out
}

impl Exporter {
    fn on_event(&self, event: Event) {
        let Ok(mut p) = self.pending.lock() else { return };
        match event {
            Event::StructuredLog(s) => match s.payload {
                StructuredLogPayload::SpanStart(start) => {
                    let key = (s.trace_id, s.span_id);
                    if p.open.len() >= MAX_OPEN_SPANS {
                        if let Some(old) = p.open_order.pop_front() {
                            p.open.remove(&old);
                        }
                    }
                    p.open_order.push_back(key.clone());
                    p.open.insert(
                        key,
                        Open {
                            name: start.name,
                            parent: start.parent_span_id,
                            start_ns: unix_nanos(&s.timestamp),
                            attributes: s.attributes,
                            events: Vec::new(),
                        },
                    );
                }
                StructuredLogPayload::SpanEnd(end) => {
                    let key = (s.trace_id, s.span_id);
                    let Some(open) = p.open.remove(&key) else { return };
                    if let Some(i) = p.open_order.iter().position(|k| *k == key) {
                        p.open_order.remove(i);
                    }
                    let (trace_id, span_id) = key;
                    let code = if end.status == SpanStatus::Error { 2 } else { 1 };
                    let span = json!({
                        "traceId": otlp_id(&trace_id, 16),
                        "spanId": otlp_id(&span_id, 8),
                        "parentSpanId": open.parent.as_deref().map(|p| otlp_id(p, 8)).unwrap_or_default(),
                        "name": open.name,
                        "kind": if open.parent.is_none() { 2 } else { 1 },
                        "startTimeUnixNano": open.start_ns.to_string(),
                        "endTimeUnixNano": unix_nanos(&s.timestamp).to_string(),
                        "attributes": attributes(open.attributes.as_ref(), &[
                            ("llama_stack.trace_id", &trace_id),
                            ("llama_stack.span_id", &span_id),
                        ]),
                        "events": open.events,
                        "status": {"code": code},
                    });
                    if p.spans.len() < MAX_PENDING {
                        p.spans.push(span);
                    } else {
                        p.dropped += 1;
                    }
                }
            },
            Event::UnstructuredLog(e) => {
                let key = (e.trace_id, e.span_id);
                if let Some(open) = p.open.get_mut(&key) {
                    open.events.push(json!({
                        "timeUnixNano": unix_nanos(&e.timestamp).to_string(),
                        "name": e.message,
                        "attributes": attributes(e.attributes.as_ref(), &[("severity", e.severity.as_str())]),
                    }));
                }
            }
            Event::Metric(m) => {
                let point = json!({
                    "name": m.metric,
                    "unit": m.unit,
                    "gauge": {"dataPoints": [{
                        "timeUnixNano": unix_nanos(&m.timestamp).to_string(),
                        "asDouble": m.value.as_f64().unwrap_or(0.0),
                        "attributes": attributes(m.attributes.as_ref(), &[
                            ("llama_stack.trace_id", &m.trace_id),
                            ("llama_stack.span_id", &m.span_id),
                        ]),
                    }]},
                });
                if p.metrics.len() < MAX_PENDING {
                    p.metrics.push(point);
                } else {
                    p.dropped += 1;
                }
            }
        }
    }

    async fn post(&self, path: &str, body: &Value) {
        let url = format!("{}{path}", self.endpoint);
        match self.client.post(&url).json(body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(target: "telemetry", "OTLP export to {url} answered {}", r.status()),
            Err(e) => tracing::warn!(target: "telemetry", "OTLP export to {url} failed: {e}"),
        }
    }

    async fn export(&self) {
        let _one_at_a_time = self.export_lock.lock().await;
        loop {
            let (spans, metrics, dropped) = {
                let Ok(mut p) = self.pending.lock() else { return };
                let n = p.spans.len().min(BATCH);
                let m = p.metrics.len().min(BATCH);
                (
                    p.spans.drain(..n).collect::<Vec<_>>(),
                    p.metrics.drain(..m).collect::<Vec<_>>(),
                    std::mem::take(&mut p.dropped),
                )
            };
            if dropped > 0 {
                tracing::warn!(target: "telemetry", "OTLP exporter behind: {dropped} spans or points dropped");
            }
            if spans.is_empty() && metrics.is_empty() {
                return;
            }
            let scope = json!({"name": "llama-stack-rs", "version": env!("CARGO_PKG_VERSION")});
            if !spans.is_empty() {
                let body = json!({"resourceSpans": [{
                    "resource": self.resource, "scopeSpans": [{"scope": scope, "spans": spans}],
                }]});
                self.post("/v1/traces", &body).await;
            }
            if !metrics.is_empty() {
                let body = json!({"resourceMetrics": [{
                    "resource": self.resource, "scopeMetrics": [{"scope": scope, "metrics": metrics}],
                }]});
                self.post("/v1/metrics", &body).await;
            }
        }
    }
}

impl OtlpTelemetry {
    /// Must be called inside a tokio runtime (starts the periodic export).
    pub fn build(config: &OtlpConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::config(format!("OTLP client: {e}")))?;
        let resource = json!({"attributes": [{"key": "service.name", "value": {"stringValue": config.service_name}}]});
        let inner = Arc::new(Exporter {
            client,
            endpoint: config.endpoint(),
            resource,
            pending: Mutex::default(),
            export_lock: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(exporter) = weak.upgrade() else { return };
                exporter.export().await;
            }
        });
        Ok(Self { inner, ticker })
    }
}

#[async_trait]
impl TelemetryProvider for OtlpTelemetry {
    async fn log_event(&self, event: Event) -> Result<()> {
        self.inner.on_event(event);
        Ok(())
    }

    async fn get_trace(&self, trace_id: &str) -> Result<Trace> {
        Err(Error::not_implemented(format!(
            "the OTLP exporter does not keep traces; read trace `{trace_id}` in the tracing backend"
        )))
    }

    async fn flush(&self) {
        self.inner.export().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_sized() {
        assert_eq!(otlp_id("ab", 8), "0000000000006162");
        assert_eq!(otlp_id("abcdefghijkl", 8).len(), 16);
        assert_eq!(otlp_id("abcdefghijkl", 16).len(), 32);
        assert_eq!(otlp_id("abcdefghijkl", 16), otlp_id("abcdefghijkl", 16));
    }

    #[test]
    fn endpoint_reads_upstream_port_as_otlp() {
        let c: OtlpConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(c.endpoint(), "http://localhost:4318");
        let c: OtlpConfig = serde_json::from_value(json!({"jaeger_host": "j", "jaeger_port": 14318})).unwrap();
        assert_eq!(c.endpoint(), "http://j:14318");
        let c: OtlpConfig = serde_json::from_value(json!({"otlp_endpoint": "http://x:1/"})).unwrap();
        assert_eq!(c.endpoint(), "http://x:1");
    }
}

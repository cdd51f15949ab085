//! `meta-reference`: prints events readably through the process log and keeps traces so
//! `/telemetry/get_trace` can answer. Memory is bounded (the oldest traces are forgotten first);
//! with `persistence_store` set, traces and their spans are also written to that kv store, so a
//! trace can be read after a restart or from another server process sharing the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kvstore::{self, KvStore, KvStoreConfig};
use crate::providers::telemetry::TelemetryProvider;
use crate::types::common::Timestamp;
use crate::types::telemetry::{Event, LogSeverity, Span, SpanStatus, StructuredLogPayload, Trace};

/// How many traces are kept in memory before the oldest is forgotten.
pub const MAX_TRACES: usize = 4096;
/// How many spans of one trace are kept in memory (later ones are still printed and stored).
pub const MAX_SPANS_PER_TRACE: usize = 1024;

#[derive(Debug, Default, Deserialize)]
pub struct ConsoleConfig {
    /// Where traces survive a restart; none keeps them in memory only.
    #[serde(default)]
    pub persistence_store: Option<KvStoreConfig>,
}

struct Record {
    trace: Trace,
    spans: Vec<Span>,
}

#[derive(Default)]
struct Memory {
    traces: HashMap<String, Record>,
    order: VecDeque<String>,
}

impl Memory {
    fn insert(&mut self, trace: Trace) {
        if !self.traces.contains_key(&trace.trace_id) {
            self.order.push_back(trace.trace_id.clone());
            if self.order.len() > MAX_TRACES {
                if let Some(old) = self.order.pop_front() {
                    self.traces.remove(&old);
                }
            }
        }
        self.traces.insert(trace.trace_id.clone(), Record { trace, spans: Vec::new() });
    }
}

#[derive(Default)]
pub struct ConsoleTelemetry {
    memory: Mutex<Memory>,
    store: Option<Arc<dyn KvStore>>,
}

fn trace_key(trace_id: &str) -> String {
    format!("telemetry:trace:{trace_id}")
}

fn span_key(trace_id: &str, span_id: &str) -> String {
    format!("telemetry:span:{trace_id}:{span_id}")
}

fn millis_between(start: &Timestamp, end: &Timestamp) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(start.as_str()).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(end.as_str()).ok()?;
    #[allow(clippy::cast_precision_loss, reason = "a duration for display")]
    let ms = (b - a).num_microseconds()? as f64 / 1000.0;
    Some(ms)
}

impl ConsoleTelemetry {
    pub async fn build(config: &ConsoleConfig) -> Result<Self> {
        let store = match &config.persistence_store {
            Some(c) => Some(kvstore::open(c).await.map_err(|e| Error::config(format!("`persistence_store`: {e}")))?),
            None => None,
        };
        Ok(Self { memory: Mutex::default(), store })
    }

    /// The spans of a trace this process has seen (or that the store holds), in start order.
    pub async fn spans(&self, trace_id: &str) -> Result<Vec<Span>> {
        if let Ok(m) = self.memory.lock() {
            if let Some(r) = m.traces.get(trace_id) {
                return Ok(r.spans.clone());
            }
        }
        let Some(store) = &self.store else { return Ok(Vec::new()) };
        let prefix = format!("telemetry:span:{trace_id}:");
        let mut spans: Vec<Span> =
            store.scan_prefix(&prefix).await?.iter().filter_map(|(_, v)| serde_json::from_str(v).ok()).collect();
        spans.sort_by(|a, b| a.start_time.cmp(&b.start_time));
        Ok(spans)
    }

    async fn persist_trace(&self, trace: &Trace) {
        let Some(store) = &self.store else { return };
        if let Ok(json) = serde_json::to_string(trace) {
            if let Err(e) = store.set(&trace_key(&trace.trace_id), &json).await {
                tracing::warn!(target: "telemetry", "cannot store trace {}: {e}", trace.trace_id);
            }
        }
    }

    async fn persist_span(&self, span: &Span) {
        let Some(store) = &self.store else { return };
        if let Ok(json) = serde_json::to_string(span) {
            if let Err(e) = store.set(&span_key(&span.trace_id, &span.span_id), &json).await {
                tracing::warn!(target: "telemetry", "cannot store span {}: {e}", span.span_id);
            }
        }
    }

    /// Records a span start; returns the new trace when this span is a root.
    fn on_start(&self, span: Span) -> Option<Trace> {
        let mut m = self.memory.lock().ok()?;
        let mut new_trace = None;
        if span.parent_span_id.is_none() && !m.traces.contains_key(&span.trace_id) {
            let trace = Trace {
                trace_id: span.trace_id.clone(),
                root_span_id: span.span_id.clone(),
                start_time: span.start_time.clone(),
                end_time: None,
            };
            m.insert(trace.clone());
            new_trace = Some(trace);
        }
        if let Some(r) = m.traces.get_mut(&span.trace_id) {
            if r.spans.len() < MAX_SPANS_PER_TRACE {
                r.spans.push(span);
            }
        }
        new_trace
    }

    /// Records a span end; returns the span (and the trace when the root ended).
    fn on_end(&self, trace_id: &str, span_id: &str, at: &Timestamp) -> (Option<Span>, Option<Trace>) {
        let Ok(mut m) = self.memory.lock() else { return (None, None) };
        let Some(r) = m.traces.get_mut(trace_id) else { return (None, None) };
        let span = r.spans.iter_mut().find(|s| s.span_id == span_id).map(|s| {
            s.end_time = Some(at.clone());
            s.clone()
        });
        let trace = (r.trace.root_span_id == span_id).then(|| {
            r.trace.end_time = Some(at.clone());
            r.trace.clone()
        });
        (span, trace)
    }
}

#[async_trait]
impl TelemetryProvider for ConsoleTelemetry {
    async fn log_event(&self, event: Event) -> Result<()> {
        match event {
            Event::UnstructuredLog(e) => {
                let (t, s) = (e.trace_id.as_str(), e.span_id.as_str());
                match e.severity {
                    LogSeverity::Verbose | LogSeverity::Debug => {
                        tracing::debug!(target: "telemetry", "[{t}/{s}] {}", e.message);
                    }
                    LogSeverity::Info => tracing::info!(target: "telemetry", "[{t}/{s}] {}", e.message),
                    LogSeverity::Warn => tracing::warn!(target: "telemetry", "[{t}/{s}] {}", e.message),
                    LogSeverity::Error | LogSeverity::Critical => {
                        tracing::error!(target: "telemetry", "[{t}/{s}] {}", e.message);
                    }
                }
            }
            Event::Metric(m) => {
                tracing::info!(
                    target: "telemetry",
                    "[{}/{}] metric {} = {} {}", m.trace_id, m.span_id, m.metric, m.value, m.unit
                );
            }
            Event::StructuredLog(s) => match s.payload {
                StructuredLogPayload::SpanStart(start) => {
                    tracing::debug!(
                        target: "telemetry",
                        "[{}/{}] span start {} (parent {})",
                        s.trace_id, s.span_id, start.name, start.parent_span_id.as_deref().unwrap_or("none")
                    );
                    let span = Span {
                        span_id: s.span_id,
                        trace_id: s.trace_id,
                        parent_span_id: start.parent_span_id,
                        name: start.name,
                        start_time: s.timestamp,
                        end_time: None,
                        attributes: s.attributes,
                    };
                    if let Some(trace) = self.on_start(span.clone()) {
                        self.persist_trace(&trace).await;
                    }
                    self.persist_span(&span).await;
                }
                StructuredLogPayload::SpanEnd(end) => {
                    let (span, trace) = self.on_end(&s.trace_id, &s.span_id, &s.timestamp);
                    let status = if end.status == SpanStatus::Error { "error" } else { "ok" };
                    if let Some(sp) = &span {
                        let ms = millis_between(&sp.start_time, &s.timestamp).unwrap_or(0.0);
                        tracing::info!(
                            target: "telemetry",
                            "[{}/{}] span end {} {status} in {ms:.3} ms", s.trace_id, s.span_id, sp.name
                        );
                    } else {
                        tracing::info!(target: "telemetry", "[{}/{}] span end {status}", s.trace_id, s.span_id);
                    }
                    if let Some(span) = span {
                        self.persist_span(&span).await;
                    }
                    if let Some(trace) = trace {
                        self.persist_trace(&trace).await;
                    }
                }
            },
        }
        Ok(())
    }

    async fn get_trace(&self, trace_id: &str) -> Result<Trace> {
        if let Some(t) = self
            .memory
            .lock()
            .map_err(|_| Error::internal("trace table poisoned"))?
            .traces
            .get(trace_id)
            .map(|r| r.trace.clone())
        {
            return Ok(t);
        }
        if let Some(store) = &self.store {
            if let Some(json) = store.get(&trace_key(trace_id)).await? {
                return serde_json::from_str(&json).map_err(|e| Error::Storage(format!("trace `{trace_id}`: {e}")));
            }
        }
        Err(Error::invalid(format!("trace `{trace_id}` not found")))
    }
}

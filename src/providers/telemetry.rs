//! The telemetry provider interface and the built-in console provider (`meta-reference`).
//!
//! The console provider writes log events through `tracing` and remembers root spans, so
//! `get_trace` can answer for traces it has seen (upstream's console provider could not).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::types::telemetry::{Event, LogSeverity, SpanStatus, StructuredLogPayload, Trace};

#[async_trait]
pub trait TelemetryProvider: Send + Sync {
    async fn log_event(&self, event: Event) -> Result<()>;
    async fn get_trace(&self, trace_id: &str) -> Result<Trace>;
}

/// How many traces the console provider remembers before it forgets the oldest.
const MAX_TRACES: usize = 4096;

#[derive(Default)]
pub struct ConsoleTelemetry {
    traces: Mutex<(HashMap<String, Trace>, std::collections::VecDeque<String>)>,
}

impl ConsoleTelemetry {
    fn remember(&self, trace: Trace) {
        let Ok(mut guard) = self.traces.lock() else { return };
        let (map, order) = &mut *guard;
        if !map.contains_key(&trace.trace_id) {
            order.push_back(trace.trace_id.clone());
            if order.len() > MAX_TRACES {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        map.insert(trace.trace_id.clone(), trace);
    }
}

#[async_trait]
impl TelemetryProvider for ConsoleTelemetry {
    async fn log_event(&self, event: Event) -> Result<()> {
        match event {
            Event::UnstructuredLog(e) => {
                let span = e.span_id.as_str();
                match e.severity {
                    LogSeverity::Verbose | LogSeverity::Debug => {
                        tracing::debug!(target: "telemetry", span, "{}", e.message);
                    }
                    LogSeverity::Info => tracing::info!(target: "telemetry", span, "{}", e.message),
                    LogSeverity::Warn => tracing::warn!(target: "telemetry", span, "{}", e.message),
                    LogSeverity::Error | LogSeverity::Critical => {
                        tracing::error!(target: "telemetry", span, "{}", e.message);
                    }
                }
            }
            Event::Metric(m) => {
                tracing::info!(target: "telemetry", metric = %m.metric, value = %m.value, unit = %m.unit, "metric");
            }
            Event::StructuredLog(s) => match s.payload {
                StructuredLogPayload::SpanStart(start) if start.parent_span_id.is_none() => {
                    self.remember(Trace {
                        trace_id: s.trace_id,
                        root_span_id: s.span_id,
                        start_time: s.timestamp,
                        end_time: None,
                    });
                }
                StructuredLogPayload::SpanEnd(end) => {
                    let Ok(mut guard) = self.traces.lock() else { return Ok(()) };
                    if let Some(t) = guard.0.get_mut(&s.trace_id) {
                        if t.root_span_id == s.span_id {
                            t.end_time = Some(s.timestamp);
                        }
                    }
                    if end.status == SpanStatus::Error {
                        tracing::warn!(target: "telemetry", span = %s.span_id, "span ended with an error");
                    }
                }
                StructuredLogPayload::SpanStart(_) => {}
            },
        }
        Ok(())
    }

    async fn get_trace(&self, trace_id: &str) -> Result<Trace> {
        let guard = self.traces.lock().map_err(|_| Error::internal("trace table poisoned"))?;
        guard.0.get(trace_id).cloned().ok_or_else(|| Error::invalid(format!("trace `{trace_id}` not found")))
    }
}

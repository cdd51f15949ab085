//! `llama_stack.apis.telemetry`: log, metric and span events, and traces.

use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::common::{JsonObject, Timestamp};
use super::macros::{literal, string_enum, tagged_union};

literal!(UnstructuredLogTag = "unstructured_log");
literal!(MetricTag = "metric");
literal!(StructuredLogTag = "structured_log");
literal!(SpanStartTag = "span_start");
literal!(SpanEndTag = "span_end");

string_enum!(SpanStatus { Ok = "ok", Error = "error" });
string_enum!(LogSeverity {
    Verbose = "verbose",
    Debug = "debug",
    Info = "info",
    Warn = "warn",
    Error = "error",
    Critical = "critical",
});
string_enum!(EventType { UnstructuredLog = "unstructured_log", StructuredLog = "structured_log", Metric = "metric" });
string_enum!(StructuredLogType { SpanStart = "span_start", SpanEnd = "span_end" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub span_id: String,
    pub trace_id: String,
    #[serde(default)]
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start_time: Timestamp,
    #[serde(default)]
    pub end_time: Option<Timestamp>,
    #[serde(default)]
    pub attributes: Option<JsonObject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub trace_id: String,
    pub root_span_id: String,
    pub start_time: Timestamp,
    #[serde(default)]
    pub end_time: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnstructuredLogEvent {
    #[serde(rename = "type", default)]
    pub kind: UnstructuredLogTag,
    pub trace_id: String,
    pub span_id: String,
    pub timestamp: Timestamp,
    #[serde(default = "empty_attributes")]
    pub attributes: Option<JsonObject>,
    pub message: String,
    pub severity: LogSeverity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEvent {
    #[serde(rename = "type", default)]
    pub kind: MetricTag,
    pub trace_id: String,
    pub span_id: String,
    pub timestamp: Timestamp,
    #[serde(default = "empty_attributes")]
    pub attributes: Option<JsonObject>,
    pub metric: String,
    pub value: Number,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanStartPayload {
    #[serde(rename = "type", default)]
    pub kind: SpanStartTag,
    pub name: String,
    #[serde(default)]
    pub parent_span_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEndPayload {
    #[serde(rename = "type", default)]
    pub kind: SpanEndTag,
    pub status: SpanStatus,
}

tagged_union!(StructuredLogPayload, tag = "type", {
    SpanStart(SpanStartPayload) = "span_start",
    SpanEnd(SpanEndPayload) = "span_end",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuredLogEvent {
    #[serde(rename = "type", default)]
    pub kind: StructuredLogTag,
    pub trace_id: String,
    pub span_id: String,
    pub timestamp: Timestamp,
    #[serde(default = "empty_attributes")]
    pub attributes: Option<JsonObject>,
    pub payload: StructuredLogPayload,
}

tagged_union!(
    /// `Event`: discriminated on `type`.
    Event, tag = "type", {
        UnstructuredLog(UnstructuredLogEvent) = "unstructured_log",
        Metric(MetricEvent) = "metric",
        StructuredLog(StructuredLogEvent) = "structured_log",
    }
);

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn empty_attributes() -> Option<JsonObject> {
    Some(JsonObject::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEventRequest {
    pub event: Event,
}

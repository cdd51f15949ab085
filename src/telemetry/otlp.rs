//! `remote::opentelemetry-jaeger`: spans and metrics exported over OTLP/HTTP (protobuf, OTLP 1.x)
//! with the OpenTelemetry SDK and its OTLP exporter, to `{endpoint}/v1/traces` and
//! `{endpoint}/v1/metrics`. Jaeger (port 4318), the OpenTelemetry Collector and most tracing
//! backends accept it.
//!
//! Spans arrive here as start and end events with ids already chosen, so they are assembled
//! into the SDK's `SpanData` (exact ids, times, parent, attributes, logs as span events, status)
//! and handed to its batch processor, which exports them in batches from a thread of its own.
//! Metric events go to SDK instruments, as the Python stack of the era did: an integer value
//! adds to a counter, any other value sets a gauge; a periodic reader exports them every second.
//!
//! Ids: trace and span ids here are short strings; OTLP wants 16 and 8 bytes. The string's
//! first 16 (trace) or 8 (span) bytes, read as a big-endian number, give the OTLP id (upstream's
//! mapping), so the same string always maps to the same id; the original ids travel as the
//! attributes `llama_stack.trace_id` and `llama_stack.span_id`.
//!
//! The SDK calls its HTTP client from its own threads, outside any tokio runtime, so requests
//! are sent by the crate's reqwest client on a small runtime owned by the exporter.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::metrics::{Counter, Gauge, Meter, MeterProvider as _};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SpanProcessor as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::providers::telemetry::TelemetryProvider;
use crate::types::common::{JsonObject, Timestamp};
use crate::types::telemetry::{Event, MetricEvent, SpanStatus, StructuredLogPayload, Trace};

/// Upstream's default, the Jaeger agent's UDP (thrift) port, which this build does not speak.
const JAEGER_AGENT_PORT: u16 = 6831;
/// Jaeger's OTLP/HTTP port.
const OTLP_HTTP_PORT: u16 = 4318;
/// Spans waiting for their end; beyond this the oldest starts are forgotten.
const MAX_OPEN_SPANS: usize = 16_384;
/// Finished spans waiting for export (the batch processor's queue); beyond this new ones are
/// dropped.
const MAX_QUEUED_SPANS: usize = 16_384;
/// Largest batch in one request.
const BATCH: usize = 2048;
/// Logs kept as events of one span.
const MAX_EVENTS_PER_SPAN: usize = 128;
/// Distinct metric names (with their kind) turned into instruments.
const MAX_INSTRUMENTS: usize = 1024;
/// How often batches and metrics leave.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// The longest one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The first `N` bytes of `id`, right-aligned: the id as a big-endian number.
fn id_bytes<const N: usize>(id: &str) -> [u8; N] {
    let head = &id.as_bytes()[..id.len().min(N)];
    let mut out = [0u8; N];
    out[N - head.len()..].copy_from_slice(head);
    out
}

/// The OTLP trace id of a trace id string.
pub fn otlp_trace_id(id: &str) -> [u8; 16] {
    id_bytes(id)
}

/// The OTLP span id of a span id string.
pub fn otlp_span_id(id: &str) -> [u8; 8] {
    id_bytes(id)
}

/// A time as a `SystemTime` (naive times are UTC; a bare date is its midnight).
fn system_time(t: &Timestamp) -> SystemTime {
    let s = t.as_str();
    let dt = chrono::DateTime::parse_from_rfc3339(s).map(|d| d.naive_utc()).or_else(|_| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN)))
    });
    let nanos = dt.ok().and_then(|d| d.and_utc().timestamp_nanos_opt()).and_then(|n| u64::try_from(n).ok());
    nanos.map_or(SystemTime::UNIX_EPOCH, |n| SystemTime::UNIX_EPOCH + Duration::from_nanos(n))
}

fn key_value(key: &str, v: &Value) -> KeyValue {
    let key = key.to_owned();
    match v {
        Value::String(s) => KeyValue::new(key, s.clone()),
        Value::Bool(b) => KeyValue::new(key, *b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => KeyValue::new(key, i),
            None => KeyValue::new(key, n.as_f64().unwrap_or(f64::NAN)),
        },
        other => KeyValue::new(key, other.to_string()),
    }
}

fn key_values(attrs: Option<&JsonObject>) -> Vec<KeyValue> {
    attrs.map(|a| a.iter().map(|(k, v)| key_value(k, v)).collect()).unwrap_or_default()
}

/// A URL without the user and password it may carry, for messages.
fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => "the configured endpoint".to_owned(),
    }
}

/// Instrument names as OpenTelemetry accepts them: a letter, then up to 254 of letters, digits,
/// `_ . - /`.
fn valid_instrument_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 255
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
}

/// The HTTP client the OTLP exporters use: the crate's reqwest client, run on a current-thread
/// runtime with a thread of its own (the SDK calls from threads that are not in a runtime).
struct Transport {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// Dropping it stops the runtime's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    fn start() -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| Error::config(format!("OTLP client: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("OTLP exporter runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| Error::internal(format!("OTLP exporter thread: {e}")))?;
        Ok(Self { client, runtime: handle, _stop: stop })
    }
}

#[async_trait]
impl HttpClient for Transport {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> std::result::Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let send = async move {
            let response =
                client.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, reqwest::Error>(out)
        };
        match self.runtime.spawn(send).await {
            Ok(Ok(response)) => Ok(response),
            // The URL may carry credentials (`http://user:key@collector`): never in a message.
            Ok(Err(e)) => Err(Box::new(e.without_url())),
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// A span between its start and its end.
struct Open {
    name: String,
    parent: Option<String>,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    events: Vec<opentelemetry::trace::Event>,
    dropped_events: u32,
}

#[derive(Default)]
struct OpenSpans {
    open: HashMap<(String, String), Open>,
    /// Start order, for forgetting the oldest; may hold keys of spans that already ended.
    order: VecDeque<(String, String)>,
}

impl OpenSpans {
    fn insert(&mut self, key: (String, String), span: Open) -> bool {
        let mut evicted = false;
        while self.open.len() >= MAX_OPEN_SPANS {
            let Some(old) = self.order.pop_front() else { break };
            evicted |= self.open.remove(&old).is_some();
        }
        self.order.push_back(key.clone());
        self.open.insert(key, span);
        if self.order.len() > 2 * MAX_OPEN_SPANS {
            let open = &self.open;
            self.order.retain(|k| open.contains_key(k));
        }
        evicted
    }
}

enum Instrument {
    Counter(Counter<u64>),
    Gauge(Gauge<f64>),
}

/// The OTLP exporter provider.
pub struct OtlpTelemetry {
    spans: Mutex<OpenSpans>,
    processor: Arc<BatchSpanProcessor>,
    scope: InstrumentationScope,
    meters: SdkMeterProvider,
    meter: Meter,
    instruments: Mutex<HashMap<(String, bool), Instrument>>,
}

impl Drop for OtlpTelemetry {
    fn drop(&mut self) {
        // Shutting down exports what is left and waits for it: never on the dropping thread,
        // which may be the runtime the receiver runs on.
        let processor = Arc::clone(&self.processor);
        let meters = self.meters.clone();
        let _ = std::thread::Builder::new().name("otlp-shutdown".into()).spawn(move || {
            let _ = processor.shutdown();
            let _ = meters.shutdown();
        });
    }
}

impl OtlpTelemetry {
    pub fn build(config: &OtlpConfig) -> Result<Self> {
        let endpoint = config.endpoint();
        let transport: Arc<dyn HttpClient> = Arc::new(Transport::start()?);
        let resource = Resource::builder().with_service_name(config.service_name.clone()).build();
        let shown = without_credentials(&endpoint);
        let bad = |what: &str, e: &dyn fmt::Display| {
            Error::config(format!("`otlp_endpoint`/`jaeger_host`: cannot export {what} to {shown}: {e}"))
        };
        let mut spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .with_timeout(EXPORT_TIMEOUT)
            .with_shared_http_client(Arc::clone(&transport))
            .build()
            .map_err(|e| bad("spans", &e))?;
        spans.set_resource(&resource);
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUED_SPANS)
            .with_max_export_batch_size(BATCH)
            .with_scheduled_delay(EXPORT_EVERY)
            .build();
        let processor = BatchSpanProcessor::builder(spans).with_batch_config(batch).build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/metrics"))
            .with_timeout(EXPORT_TIMEOUT)
            .with_shared_http_client(transport)
            .build()
            .map_err(|e| bad("metrics", &e))?;
        let reader = PeriodicReader::builder(metrics).with_interval(EXPORT_EVERY).build();
        let meters = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
        let scope = InstrumentationScope::builder("llama-stack-rs").with_version(env!("CARGO_PKG_VERSION")).build();
        let meter = meters.meter_with_scope(scope.clone());
        Ok(Self {
            spans: Mutex::default(),
            processor: Arc::new(processor),
            scope,
            meters,
            meter,
            instruments: Mutex::default(),
        })
    }

    fn start(
        &self,
        trace_id: String,
        span_id: String,
        name: String,
        parent: Option<String>,
        at: &Timestamp,
        attrs: Option<&JsonObject>,
    ) {
        let mut attributes = key_values(attrs);
        attributes.push(KeyValue::new("llama_stack.trace_id", trace_id.clone()));
        attributes.push(KeyValue::new("llama_stack.span_id", span_id.clone()));
        let open = Open { name, parent, start: system_time(at), attributes, events: Vec::new(), dropped_events: 0 };
        let Ok(mut spans) = self.spans.lock() else { return };
        if spans.insert((trace_id, span_id), open) {
            tracing::warn!(target: "telemetry", "OTLP exporter: more than {MAX_OPEN_SPANS} open spans, the oldest dropped");
        }
    }

    fn end(&self, trace_id: String, span_id: String, at: &Timestamp, status: SpanStatus) {
        let key = (trace_id, span_id);
        let Some(open) = self.spans.lock().ok().and_then(|mut s| s.open.remove(&key)) else { return };
        let (trace_id, span_id) = key;
        let trace = TraceId::from_bytes(otlp_trace_id(&trace_id));
        let mut events = SpanEvents::default();
        events.events = open.events;
        events.dropped_count = open.dropped_events;
        let data = SpanData {
            span_context: SpanContext::new(
                trace,
                SpanId::from_bytes(otlp_span_id(&span_id)),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: open.parent.as_deref().map_or(SpanId::INVALID, |p| SpanId::from_bytes(otlp_span_id(p))),
            parent_span_is_remote: false,
            span_kind: if open.parent.is_none() { SpanKind::Server } else { SpanKind::Internal },
            name: open.name.into(),
            start_time: open.start,
            end_time: system_time(at).max(open.start),
            attributes: open.attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: if status == SpanStatus::Error { Status::error("") } else { Status::Ok },
            instrumentation_scope: self.scope.clone(),
        };
        self.processor.on_end(data);
    }

    fn log(&self, trace_id: String, span_id: String, at: &Timestamp, message: String, attrs: Vec<KeyValue>) {
        let Ok(mut spans) = self.spans.lock() else { return };
        let Some(open) = spans.open.get_mut(&(trace_id, span_id)) else { return };
        if open.events.len() < MAX_EVENTS_PER_SPAN {
            open.events.push(opentelemetry::trace::Event::new(message, system_time(at), attrs, 0));
        } else {
            open.dropped_events += 1;
        }
    }

    fn metric(&self, m: &MetricEvent) {
        if !valid_instrument_name(&m.metric) {
            tracing::warn!(
                target: "telemetry",
                "OTLP exporter: metric name `{}` is not a valid instrument name (a letter, then letters, digits, `_.-/`, \
                 at most 255); dropped", m.metric
            );
            return;
        }
        let counter = m.value.as_u64();
        let Ok(mut instruments) = self.instruments.lock() else { return };
        let key = (m.metric.clone(), counter.is_some());
        if !instruments.contains_key(&key) {
            if instruments.len() >= MAX_INSTRUMENTS {
                tracing::warn!(
                    target: "telemetry",
                    "OTLP exporter: more than {MAX_INSTRUMENTS} metric names; `{}` dropped", m.metric
                );
                return;
            }
            let instrument = if counter.is_some() {
                Instrument::Counter(self.meter.u64_counter(m.metric.clone()).with_unit(m.unit.clone()).build())
            } else {
                Instrument::Gauge(self.meter.f64_gauge(m.metric.clone()).with_unit(m.unit.clone()).build())
            };
            instruments.insert(key.clone(), instrument);
        }
        let attrs = key_values(m.attributes.as_ref());
        match (instruments.get(&key), counter) {
            (Some(Instrument::Counter(c)), Some(v)) => c.add(v, &attrs),
            (Some(Instrument::Gauge(g)), _) => g.record(m.value.as_f64().unwrap_or(f64::NAN), &attrs),
            _ => {}
        }
    }
}

#[async_trait]
impl TelemetryProvider for OtlpTelemetry {
    async fn log_event(&self, event: Event) -> Result<()> {
        match event {
            Event::StructuredLog(s) => match s.payload {
                StructuredLogPayload::SpanStart(start) => {
                    self.start(
                        s.trace_id,
                        s.span_id,
                        start.name,
                        start.parent_span_id,
                        &s.timestamp,
                        s.attributes.as_ref(),
                    );
                }
                StructuredLogPayload::SpanEnd(end) => self.end(s.trace_id, s.span_id, &s.timestamp, end.status),
            },
            Event::UnstructuredLog(e) => {
                let mut attrs = vec![KeyValue::new("severity", e.severity.as_str())];
                attrs.extend(key_values(e.attributes.as_ref()));
                self.log(e.trace_id, e.span_id, &e.timestamp, e.message, attrs);
            }
            Event::Metric(m) => self.metric(&m),
        }
        Ok(())
    }

    async fn get_trace(&self, trace_id: &str) -> Result<Trace> {
        Err(Error::not_implemented(format!(
            "the OTLP exporter does not keep traces; read trace `{trace_id}` in the tracing backend"
        )))
    }

    async fn flush(&self) {
        let processor = Arc::clone(&self.processor);
        let meters = self.meters.clone();
        let flushed = tokio::task::spawn_blocking(move || (processor.force_flush(), meters.force_flush())).await;
        match flushed {
            Ok((Ok(()), Ok(()))) => {}
            Ok((spans, metrics)) => {
                tracing::warn!(target: "telemetry", "OTLP export on flush: spans {spans:?}, metrics {metrics:?}");
            }
            Err(e) => tracing::warn!(target: "telemetry", "OTLP flush stopped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_the_strings_first_bytes_as_a_number() {
        assert_eq!(otlp_span_id("ab"), [0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(otlp_span_id("abcdefghijkl"), *b"abcdefgh");
        let t = otlp_trace_id("abcdefghijkl");
        assert_eq!(&t[..4], &[0, 0, 0, 0]);
        assert_eq!(&t[4..], b"abcdefghijkl");
        assert_eq!(otlp_trace_id("abcdefghijkl"), otlp_trace_id("abcdefghijkl"));
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

    #[test]
    fn messages_never_show_the_endpoints_credentials() {
        assert_eq!(without_credentials("http://user:s3cret@collector:4318"), "http://collector:4318");
        assert_eq!(without_credentials("not a url s3cret"), "the configured endpoint");
    }

    #[test]
    fn instrument_names_follow_opentelemetry() {
        assert!(valid_instrument_name("tokens"));
        assert!(valid_instrument_name("llama.tokens_out/s-1"));
        assert!(!valid_instrument_name(""));
        assert!(!valid_instrument_name("1tokens"));
        assert!(!valid_instrument_name("tok ens"));
        assert!(!valid_instrument_name(&"a".repeat(256)));
    }

    #[test]
    fn times_parse_in_every_accepted_form() {
        let at = |s: &str| system_time(&Timestamp::parse(s).unwrap());
        let base = at("2024-10-10T12:00:00Z");
        assert_eq!(at("2024-10-10T12:00:00"), base);
        assert_eq!(at("2024-10-10 12:00:00"), base);
        assert_eq!(at("2024-10-10T14:00:00+02:00"), base);
        assert_eq!(at("2024-10-10"), base - Duration::from_secs(12 * 3600));
    }
}

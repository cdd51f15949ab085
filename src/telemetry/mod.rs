//! Tracing for the whole core: trace and span ids, the span guards handlers and executors open,
//! and the bounded queue that carries span and log events to the stack's telemetry provider off
//! the request path.
//!
//! A [`Tracer`] belongs to a [`crate::stack::Stack`]. The operation table opens a root span for
//! every request (HTTP or in-process) and puts its [`TraceContext`] into the
//! [`RequestContext`]; anything below opens child spans with [`RequestContext::span`] and hands
//! a context rooted at the child to its callees with [`RequestContext::within`]. Dropping a
//! [`SpanGuard`] ends the span. Emitting never waits: when the queue is full the event is
//! dropped and counted ([`Tracer::dropped`]).
//!
//! Providers: [`console::ConsoleTelemetry`] (`meta-reference`) and [`otlp::OtlpTelemetry`]
//! (`remote::opentelemetry-jaeger`).

pub mod console;
pub mod otlp;
pub mod redact;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use futures::Stream;
use serde_json::{Number, Value};
use tokio::sync::{mpsc, oneshot};

use crate::providers::RequestContext;
use crate::providers::telemetry::TelemetryProvider;
use crate::types::common::{JsonObject, Timestamp};
use crate::types::telemetry::{
    Event, LogSeverity, MetricEvent, MetricTag, SpanEndPayload, SpanEndTag, SpanStartPayload, SpanStartTag, SpanStatus,
    StructuredLogEvent, StructuredLogPayload, StructuredLogTag, UnstructuredLogEvent, UnstructuredLogTag,
};

/// Events waiting for the provider before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 8192;

/// A 12-character URL-safe id from 96 random bits, the form trace and span ids take here (as in
/// the Python stack of the era).
pub fn short_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    s.truncate(12);
    s
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

struct TracerInner {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
}

/// The entry point of a stack's tracing: a handle on the event queue (cheap to clone). A
/// disabled tracer (no telemetry provider) makes every span a no-op.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<TracerInner>>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer").field("enabled", &self.is_enabled()).finish()
    }
}

impl Tracer {
    /// A tracer that records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Starts the background task that hands events to `provider`, with the default queue size.
    /// Must be called inside a tokio runtime.
    pub fn start(provider: Arc<dyn TelemetryProvider>) -> Self {
        Self::with_capacity(provider, QUEUE_CAPACITY)
    }

    pub fn with_capacity(provider: Arc<dyn TelemetryProvider>, capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Event(event) => {
                        if let Err(e) = provider.log_event(*event).await {
                            tracing::debug!("telemetry provider rejected an event: {e}");
                        }
                    }
                    Msg::Flush(done) => {
                        provider.flush().await;
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { inner: Some(Arc::new(TracerInner { tx, dropped: AtomicU64::new(0) })) }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Queues an event for the provider; never waits.
    pub fn emit(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        if inner.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!("telemetry queue full: {n} events dropped so far");
            }
        }
    }

    /// Waits until every event queued before this call reached the provider and the provider
    /// flushed its own buffers (shutdown, tests).
    pub async fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (tx, rx) = oneshot::channel();
        if inner.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// A context in `trace_id` under `parent_span_id` (a caller's trace), or in a new trace when
    /// `trace_id` is `None` or not a plausible id (1 to 64 of `A-Z a-z 0-9 - _`). The next span
    /// opened in it is the trace's root when there is no parent.
    pub fn context(&self, trace_id: Option<&str>, parent_span_id: Option<&str>) -> TraceContext {
        if !self.is_enabled() {
            return TraceContext::default();
        }
        let plausible = |s: &&str| {
            (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let (trace_id, span_id) = match trace_id.filter(plausible) {
            Some(t) => (t.to_owned(), parent_span_id.filter(plausible).map(str::to_owned)),
            None => (short_id(), None),
        };
        TraceContext { current: Some(Arc::new(SpanRef { tracer: self.clone(), trace_id, span_id, owned: None })) }
    }

    /// Opens the root span of a new trace.
    pub fn root(&self, name: &str, attributes: Option<JsonObject>) -> SpanGuard {
        if !self.is_enabled() {
            return SpanGuard::noop();
        }
        SpanGuard::open(self.clone(), short_id(), None, name, attributes)
    }
}

struct SpanRef {
    tracer: Tracer,
    trace_id: String,
    /// `None` for a trace with no span yet (the next span opened is its root).
    span_id: Option<String>,
    /// Set for a span opened here (not a caller's span named by ids): its end is emitted when
    /// the last handle on it goes.
    owned: Option<Owned>,
}

struct Owned {
    failed: AtomicBool,
    /// The parent stays open while this span is: a span never ends before its children.
    _parent: Option<Arc<SpanRef>>,
}

impl Drop for SpanRef {
    fn drop(&mut self) {
        let (Some(owned), Some(span_id)) = (&self.owned, self.span_id.take()) else { return };
        let status = if owned.failed.load(Ordering::Relaxed) { SpanStatus::Error } else { SpanStatus::Ok };
        self.tracer.emit(Event::StructuredLog(StructuredLogEvent {
            kind: StructuredLogTag::default(),
            trace_id: std::mem::take(&mut self.trace_id),
            span_id,
            timestamp: Timestamp::now(),
            attributes: None,
            payload: StructuredLogPayload::SpanEnd(SpanEndPayload { kind: SpanEndTag::default(), status }),
        }));
    }
}

/// Where a request is in its trace: the trace id and the current span. Carried by
/// [`RequestContext`]; the default is "not traced" and costs nothing. A context rooted in a span
/// keeps that span open (see [`SpanGuard`]).
#[derive(Clone, Default)]
pub struct TraceContext {
    current: Option<Arc<SpanRef>>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.current {
            Some(s) => {
                f.debug_struct("TraceContext").field("trace_id", &s.trace_id).field("span_id", &s.span_id).finish()
            }
            None => f.write_str("TraceContext(off)"),
        }
    }
}

impl TraceContext {
    pub fn is_active(&self) -> bool {
        self.current.is_some()
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.current.as_deref().map(|s| s.trace_id.as_str())
    }

    pub fn span_id(&self) -> Option<&str> {
        self.current.as_deref().and_then(|s| s.span_id.as_deref())
    }

    /// Opens a span under the current one (a no-op guard when not traced).
    pub fn child(&self, name: &str, attributes: Option<JsonObject>) -> SpanGuard {
        match &self.current {
            Some(s) => SpanGuard::open(s.tracer.clone(), s.trace_id.clone(), Some(s), name, attributes),
            None => SpanGuard::noop(),
        }
    }

    /// Queues an event as is (ids already set); dropped when not traced.
    pub fn emit(&self, event: Event) {
        if let Some(s) = &self.current {
            s.tracer.emit(event);
        }
    }
}

/// An open span. The span ends (status `error` if [`SpanGuard::fail`] or [`SpanGuard::record`]
/// saw an error, else `ok`) when the guard, every context made from it
/// ([`SpanGuard::context`], [`RequestContext::within`]) and every span under it are gone. So a
/// request's span covers everything the request started, a streamed body and a turn that runs on
/// after its reader left included, and a trace always nests.
pub struct SpanGuard {
    span: Option<Arc<SpanRef>>,
}

impl fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanGuard").field("context", &self.context()).finish()
    }
}

impl SpanGuard {
    /// A guard that records nothing.
    pub fn noop() -> Self {
        Self { span: None }
    }

    fn open(
        tracer: Tracer,
        trace_id: String,
        parent: Option<&Arc<SpanRef>>,
        name: &str,
        attributes: Option<JsonObject>,
    ) -> Self {
        let span_id = short_id();
        // A context naming no span (a new trace) is no parent; a caller's span named by ids is
        // one, but not ours to keep open.
        let parent_span_id = parent.and_then(|p| p.span_id.clone());
        let keep_open = parent.filter(|p| p.owned.is_some()).map(Arc::clone);
        tracer.emit(Event::StructuredLog(StructuredLogEvent {
            kind: StructuredLogTag::default(),
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            timestamp: Timestamp::now(),
            attributes,
            payload: StructuredLogPayload::SpanStart(SpanStartPayload {
                kind: SpanStartTag::default(),
                name: name.to_owned(),
                parent_span_id,
            }),
        }));
        Self {
            span: Some(Arc::new(SpanRef {
                tracer,
                trace_id,
                span_id: Some(span_id),
                owned: Some(Owned { failed: AtomicBool::new(false), _parent: keep_open }),
            })),
        }
    }

    /// A context whose current span is this one, for callees.
    pub fn context(&self) -> TraceContext {
        TraceContext { current: self.span.clone() }
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.span.as_deref().map(|s| s.trace_id.as_str())
    }

    pub fn span_id(&self) -> Option<&str> {
        self.span.as_deref().and_then(|s| s.span_id.as_deref())
    }

    /// Opens a span under this one.
    #[must_use]
    pub fn child(&self, name: &str) -> SpanGuard {
        self.context().child(name, None)
    }

    /// Opens a span under this one with attributes (never put secrets here).
    #[must_use]
    pub fn child_with(&self, name: &str, attributes: JsonObject) -> SpanGuard {
        self.context().child(name, Some(attributes))
    }

    fn live(&self) -> Option<(&SpanRef, &str)> {
        let s = self.span.as_deref()?;
        Some((s, s.span_id.as_deref()?))
    }

    /// Marks the span as failed.
    pub fn fail(&self) {
        if let Some(owned) = self.span.as_deref().and_then(|s| s.owned.as_ref()) {
            owned.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Marks the span as failed when `result` is an error; passes it through.
    pub fn record<T, E>(&self, result: std::result::Result<T, E>) -> std::result::Result<T, E> {
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Logs a message in this span.
    pub fn log(&self, severity: LogSeverity, message: impl Into<String>) {
        let Some((s, span_id)) = self.live() else { return };
        s.tracer.emit(Event::UnstructuredLog(UnstructuredLogEvent {
            kind: UnstructuredLogTag::default(),
            trace_id: s.trace_id.clone(),
            span_id: span_id.to_owned(),
            timestamp: Timestamp::now(),
            attributes: None,
            message: message.into(),
            severity,
        }));
    }

    /// Records a metric in this span.
    pub fn metric(&self, metric: &str, value: f64, unit: &str) {
        let Some((s, span_id)) = self.live() else { return };
        let Some(value) = Number::from_f64(value) else { return };
        s.tracer.emit(Event::Metric(MetricEvent {
            kind: MetricTag::default(),
            trace_id: s.trace_id.clone(),
            span_id: span_id.to_owned(),
            timestamp: Timestamp::now(),
            attributes: None,
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
        }));
    }

    /// Keeps the span open until `stream` ends or is dropped; an error item fails the span.
    pub fn wrap_stream<S, T, E>(self, stream: S) -> SpanStream<S>
    where
        S: Stream<Item = std::result::Result<T, E>>,
    {
        SpanStream { inner: Some(Box::pin(stream)), guard: Some(self) }
    }
}

/// A stream that ends its span when it ends (see [`SpanGuard::wrap_stream`]). The inner stream
/// goes with it, and with it whatever context it holds on the span.
pub struct SpanStream<S> {
    inner: Option<Pin<Box<S>>>,
    guard: Option<SpanGuard>,
}

impl<S, T, E> Stream for SpanStream<S>
where
    S: Stream<Item = std::result::Result<T, E>>,
{
    type Item = std::result::Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let next = inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Err(_))) => {
                if let Some(g) = &self.guard {
                    g.fail();
                }
            }
            Poll::Ready(None) => {
                self.inner = None;
                self.guard = None;
            }
            _ => {}
        }
        next
    }
}

/// The span API as handlers and executors use it.
impl RequestContext {
    /// Opens a span under the request's current span (a no-op when the stack has no telemetry).
    /// Keep the guard alive for the span's duration; pass [`RequestContext::within`] to callees.
    pub fn span(&self, name: &str) -> SpanGuard {
        self.trace.child(name, None)
    }

    /// Like [`RequestContext::span`], with attributes on the span start (never secrets).
    pub fn span_with(&self, name: &str, attributes: JsonObject) -> SpanGuard {
        self.trace.child(name, Some(attributes))
    }

    /// The same request context with `span` as the current span.
    #[must_use]
    pub fn within(&self, span: &SpanGuard) -> Self {
        let mut ctx = self.clone();
        ctx.trace = span.context();
        ctx
    }
}

/// One attribute object from string pairs.
pub fn attributes<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> JsonObject {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect()
}

/// Builds `meta-reference` (registry entry).
pub fn build_console(
    args: crate::providers::registry::BuildArgs,
) -> futures::future::BoxFuture<'static, crate::error::Result<crate::providers::ProviderImpl>> {
    Box::pin(async move {
        let config: console::ConsoleConfig =
            crate::providers::typed_config(&args.config, &format!("providers.telemetry[{}].config", args.provider_id))?;
        Ok(crate::providers::ProviderImpl::Telemetry(Arc::new(console::ConsoleTelemetry::build(&config).await?)))
    })
}

/// Builds `remote::opentelemetry-jaeger` (registry entry).
pub fn build_otlp(
    args: crate::providers::registry::BuildArgs,
) -> futures::future::BoxFuture<'static, crate::error::Result<crate::providers::ProviderImpl>> {
    Box::pin(async move {
        let config: otlp::OtlpConfig =
            crate::providers::typed_config(&args.config, &format!("providers.telemetry[{}].config", args.provider_id))?;
        Ok(crate::providers::ProviderImpl::Telemetry(Arc::new(otlp::OtlpTelemetry::build(&config)?)))
    })
}

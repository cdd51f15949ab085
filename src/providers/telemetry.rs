//! The telemetry provider interface. The providers themselves and the span machinery live in
//! `crate::telemetry`.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::telemetry::{Event, Trace};

pub use crate::telemetry::console::ConsoleTelemetry;

#[async_trait]
pub trait TelemetryProvider: Send + Sync {
    async fn log_event(&self, event: Event) -> Result<()>;
    async fn get_trace(&self, trace_id: &str) -> Result<Trace>;
    /// Pushes out whatever the provider buffers (exporters); called on flush and shutdown.
    async fn flush(&self) {}
}

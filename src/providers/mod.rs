//! Providers: the implementations behind each API, the registry of provider types a run config
//! may name, and the per-request context they receive.

pub mod inference;
pub mod memory;
pub mod registry;
pub mod safety;
pub mod telemetry;

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::common::JsonObject;

/// What a request carries beyond its body. Passed explicitly (upstream used a thread-local), so a
/// provider can never see another request's keys.
#[derive(Clone, Default)]
pub struct RequestContext {
    /// The decoded `X-LlamaStack-ProviderData` header, when it was a JSON object.
    pub provider_data: Option<JsonObject>,
    /// The request's place in its trace (spans: `crate::telemetry`); off by default.
    pub trace: crate::telemetry::TraceContext,
}

/// Shows which provider-data keys were sent, never their values (they are API keys).
impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Option<Vec<&String>> = self.provider_data.as_ref().map(|m| m.keys().collect());
        f.debug_struct("RequestContext").field("provider_data_keys", &keys).field("trace", &self.trace).finish()
    }
}

impl RequestContext {
    /// Reads the `X-LlamaStack-ProviderData` header value. Anything that is not a JSON object is
    /// ignored, as upstream does.
    pub fn from_header(value: Option<&str>) -> Self {
        let provider_data = value.and_then(|v| match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        });
        Self { provider_data, trace: crate::telemetry::TraceContext::default() }
    }

    /// A string the client passed in the provider-data header, e.g. `together_api_key`.
    pub fn provider_string(&self, key: &str) -> Option<&str> {
        self.provider_data.as_ref()?.get(key)?.as_str()
    }
}

/// A built provider instance of any API.
#[derive(Clone)]
pub enum ProviderImpl {
    Inference(Arc<dyn inference::InferenceProvider>),
    Safety(Arc<dyn safety::SafetyProvider>),
    Memory(Arc<dyn memory::MemoryProvider>),
    Telemetry(Arc<dyn telemetry::TelemetryProvider>),
    Agents(Arc<crate::agents::Agents>),
}

/// Reads a provider's typed config from its (already defaulted and checked) JSON form, naming
/// the field path on error.
pub fn typed_config<T: serde::de::DeserializeOwned>(config: &JsonObject, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(config.clone()))
        .map_err(|e| Error::config(format!("`{at}.{}`: {}", e.path(), e.inner())))
}

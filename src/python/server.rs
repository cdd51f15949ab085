//! Bridge for `llama_stack.distribution.server` and the CLI: run configs, the provider
//! registry, and serving over HTTP.

use std::sync::Arc;

use pyo3::prelude::*;

use super::errors::to_py;
use crate::config::StackRunConfig;
use crate::server::{ServeOptions, serve as serve_http, shutdown_signal};
use crate::stack::Stack;

/// Parses and checks a run config (YAML or JSON text), including every provider's config
/// fields; returns it as JSON with defaults filled in. Raises `ValueError` naming the field.
#[pyfunction]
#[pyo3(signature = (config_yaml, source = "run config"))]
pub fn check_run_config(config_yaml: &str, source: &str) -> PyResult<String> {
    let mut cfg = StackRunConfig::from_yaml(config_yaml, source).map_err(to_py)?;
    crate::providers::registry::check_run_config(&mut cfg).map_err(to_py)?;
    serde_json::to_string(&cfg).map_err(|e| to_py(crate::Error::internal(e.to_string())))
}

/// Every provider type with its config fields, as JSON.
#[pyfunction]
pub fn provider_types() -> String {
    crate::providers::registry::describe().to_string()
}

/// Builds the stack and serves it until SIGINT/SIGTERM. Blocks with the GIL released.
#[pyfunction]
#[pyo3(signature = (config_yaml, host = None, port = 5000, disable_ipv6 = false, source = "run config"))]
pub fn serve(
    py: Python<'_>,
    config_yaml: &str,
    host: Option<String>,
    port: u16,
    disable_ipv6: bool,
    source: &str,
) -> PyResult<()> {
    crate::logging::init();
    let config = StackRunConfig::from_yaml(config_yaml, source).map_err(to_py)?;
    let runtime = pyo3_async_runtimes::tokio::get_runtime();
    py.detach(|| {
        runtime.block_on(async move {
            let stack = Arc::new(Stack::build(config).await?);
            serve_http(stack, ServeOptions { host, port, disable_ipv6 }, shutdown_signal()).await
        })
    })
    .map_err(to_py)
}

//! Bridge for `llama model download`: fetching a model into the model cache.

use pyo3::prelude::*;

use super::errors::to_py;

/// Fetches `model_id` into `<config dir>/checkpoints/<model_id>/` unless it is already there,
/// printing progress on stderr; returns the path of the model's file (a GGUF file) or folder (an
/// embedding model). Raises `ValueError` for an id with no known download.
#[pyfunction]
pub fn download_model(py: Python<'_>, model_id: &str) -> PyResult<String> {
    let id = model_id.trim().to_owned();
    let path = py
        .detach(move || {
            #[cfg(feature = "embedded")]
            if crate::providers::inference::embedded::cache::known(&id).is_some() {
                return crate::providers::inference::embedded::cache::ensure_model(&id);
            }
            crate::embed::ensure_model(&id)
        })
        .map_err(to_py)?;
    Ok(path.display().to_string())
}

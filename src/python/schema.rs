//! Bridge for `llama_stack.apis`: the Rust reading of each wire schema, used by the
//! conformance tests to check both sides agree.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::to_py;

/// Reads `data` (JSON) as the named wire schema and writes it back: the Rust view of a document.
#[pyfunction]
pub fn roundtrip<'py>(py: Python<'py>, schema: &str, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let out = crate::types::schema::roundtrip(schema, data).map_err(to_py)?;
    Ok(PyBytes::new(py, &out))
}

/// Names of every schema the Rust core can read.
#[pyfunction]
pub fn schema_names() -> Vec<&'static str> {
    crate::types::schema::SCHEMA_NAMES.to_vec()
}

//! The Python extension `llama_stack._core`. Every `#[pyclass]` and `#[pyfunction]` lives under
//! this module; the core above it never sees Python. See docs/bindings.md for the choices made.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Reads `data` (JSON) as the named wire schema and writes it back: the Rust view of a document.
#[pyfunction]
fn roundtrip<'py>(py: Python<'py>, schema: &str, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let out = crate::types::schema::roundtrip(schema, data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &out))
}

/// Names of every schema the Rust core can read.
#[pyfunction]
fn schema_names() -> Vec<&'static str> {
    crate::types::schema::SCHEMA_NAMES.to_vec()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(schema_names, m)?)?;
    Ok(())
}

//! The one mapping from core errors to Python exceptions, matching what upstream raised in
//! process: `ValueError` for a bad request, `NotImplementedError`, `PermissionError`,
//! `TimeoutError`, `ConnectionError` for a backend that cannot be reached.

use pyo3::PyErr;
use pyo3::exceptions::{
    PyConnectionError, PyNotImplementedError, PyPermissionError, PyRuntimeError, PyTimeoutError, PyValueError,
};

use crate::error::Error;

#[allow(clippy::needless_pass_by_value, reason = "by value so it reads as `.map_err(to_py)`")]
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidValue(_) | Error::Validation(_) | Error::Config(_) => PyValueError::new_err(msg),
        Error::PermissionDenied(_) => PyPermissionError::new_err(msg),
        Error::NotImplemented(_) => PyNotImplementedError::new_err(msg),
        Error::Timeout(_) => PyTimeoutError::new_err(msg),
        Error::Unavailable { .. } => PyConnectionError::new_err(msg),
        Error::Upstream { .. } | Error::Io(_) | Error::Storage(_) | Error::Internal(_) => PyRuntimeError::new_err(msg),
    }
}

//! Bridge for `llama_stack.distribution.stack`: a stack running in this process. Calls go
//! through the same operation table as HTTP requests, as JSON bytes both ways, so pydantic
//! validates on the Python side and serde on ours (see docs/bindings.md).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use pyo3::exceptions::{PyStopAsyncIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::Mutex;

use super::errors::to_py;
use crate::api::{self, Args, Method, Reply};
use crate::config::StackRunConfig;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;

/// A built stack. Create it with `await Stack.build(config_yaml, source)`.
#[pyclass(module = "llama_stack._core", name = "Stack", frozen)]
pub struct PyStack {
    stack: Arc<Stack>,
    ops: Arc<Vec<Method>>,
}

#[pymethods]
impl PyStack {
    /// Builds a stack from run-config text; a coroutine, so it never blocks an event loop.
    #[staticmethod]
    #[pyo3(signature = (config_yaml, source = "run config"))]
    fn build<'py>(py: Python<'py>, config_yaml: &str, source: &str) -> PyResult<Bound<'py, PyAny>> {
        crate::logging::init();
        let config = StackRunConfig::from_yaml(config_yaml, source).map_err(to_py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let stack = Stack::build(config).await.map_err(to_py)?;
            Ok(PyStack { stack: Arc::new(stack), ops: Arc::new(api::operations()) })
        })
    }

    /// Runs one operation. Resolves to `bytes` (a JSON document) or an `EventStream` of JSON
    /// documents for a streamed answer. Raises the exception upstream would have raised.
    #[pyo3(signature = (path, method, body = None, query = None, provider_data = None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        method: &str,
        body: Option<Vec<u8>>,
        query: Option<Vec<(String, String)>>,
        provider_data: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PyValueError::new_err(format!("unknown HTTP method `{method}`")))?;
        let op = match api::find(&self.ops, path, &method) {
            Some(Ok(op)) => op.clone(),
            Some(Err(expected)) => {
                return Err(PyValueError::new_err(format!("`{path}` takes {expected}, not {method}")));
            }
            None => return Err(PyValueError::new_err(format!("no operation at `{path}`"))),
        };
        let stack = Arc::clone(&self.stack);
        let args = Args::new(Bytes::from(body.unwrap_or_default()), query.unwrap_or_default());
        let ctx = RequestContext::from_header(provider_data);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let reply = api::dispatch(&op, stack, args, ctx).await.map_err(to_py)?;
            Python::attach(|py| -> PyResult<Py<PyAny>> {
                Ok(match reply {
                    Reply::Json(b) => PyBytes::new(py, &b).into_any().unbind(),
                    Reply::Stream(s) => Py::new(py, EventStream { inner: Arc::new(Mutex::new(Some(s))) })?.into_any(),
                })
            })
        })
    }

    /// Lets providers close connections.
    fn shutdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stack = Arc::clone(&self.stack);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            stack.shutdown().await;
            Ok(())
        })
    }
}

/// An async iterator of JSON documents (`bytes`), one per streamed event. Dropping it drops the
/// Rust stream, which cancels the work behind it.
#[pyclass(module = "llama_stack._core", frozen)]
pub struct EventStream {
    inner: Arc<Mutex<Option<BoxStream<'static, Result<Bytes>>>>>,
}

#[pymethods]
impl EventStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut guard = inner.lock().await;
            let next = match guard.as_mut() {
                Some(stream) => stream.next().await,
                None => None,
            };
            match next {
                Some(Ok(bytes)) => Python::attach(|py| Ok(PyBytes::new(py, &bytes).into_any().unbind())),
                Some(Err(e)) => {
                    *guard = None;
                    Err(to_py(e))
                }
                None => {
                    *guard = None;
                    Err(PyStopAsyncIteration::new_err(()))
                }
            }
        })
    }

    /// Stops the stream now (the work behind it is cancelled).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            inner.lock().await.take();
            Ok(())
        })
    }
}

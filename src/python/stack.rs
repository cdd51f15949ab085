//! Bridge for `llama_stack.distribution.stack`: a stack running in this process. Calls go
//! through the same operation table as HTTP requests, as JSON bytes both ways, so pydantic
//! validates on the Python side and serde on ours (see docs/bindings.md).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::bridge::{self, Deliver, StreamSlot};
use super::errors::to_py;
use crate::api::{self, Args, Method, Reply};
use crate::config::StackRunConfig;
use crate::providers::RequestContext;
use crate::stack::Stack;

fn json_bytes(bytes: Bytes) -> Deliver {
    Box::new(move |py| Ok(PyBytes::new(py, &bytes).into_any().unbind()))
}

fn none() -> Deliver {
    Box::new(|py| Ok(py.None()))
}

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
        bridge::spawn(py, async move {
            let stack = Arc::new(Stack::build(config).await.map_err(to_py)?);
            bridge::track_stack(&stack);
            let built = PyStack { stack, ops: Arc::new(api::operations()) };
            Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, built)?.into_any())) as Deliver)
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
        bridge::spawn(py, async move {
            Ok(match api::dispatch(&op, stack, args, ctx).await.map_err(to_py)? {
                Reply::Json(b) => json_bytes(b),
                Reply::Stream(s) => {
                    let inner = Arc::new(StreamSlot::new(Some(s)));
                    bridge::track_stream(&inner);
                    Box::new(move |py: Python<'_>| Ok(Py::new(py, EventStream { inner })?.into_any())) as Deliver
                }
            })
        })
    }

    /// Lets providers close connections.
    fn shutdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stack = Arc::clone(&self.stack);
        bridge::spawn(py, async move {
            stack.shutdown().await;
            Ok(none())
        })
    }
}

/// An async iterator of JSON documents (`bytes`), one per streamed event. Dropping it drops the
/// Rust stream, which cancels the work behind it.
#[pyclass(module = "llama_stack._core", frozen)]
pub struct EventStream {
    inner: Arc<StreamSlot>,
}

#[pymethods]
impl EventStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        bridge::spawn(py, async move {
            let mut guard = inner.lock().await;
            let next = match guard.as_mut() {
                Some(stream) => stream.next().await,
                None => None,
            };
            match next {
                Some(Ok(bytes)) => Ok(json_bytes(bytes)),
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

    /// Stops the stream now (the work behind it is cancelled). When no read is in progress the
    /// stream is dropped at once and the awaitable is already done, so closing works without a
    /// running loop too (an iterator finalized while the interpreter exits).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(mut slot) = self.inner.try_lock() {
            slot.take();
            return Ok(Bound::new(py, Ready)?.into_any());
        }
        if !bridge::is_open() {
            // The exit hook closes it.
            return Ok(Bound::new(py, Ready)?.into_any());
        }
        let inner = Arc::clone(&self.inner);
        bridge::spawn(py, async move {
            inner.lock().await.take();
            Ok(none())
        })
    }
}

/// An awaitable that is already done (its result is `None`).
#[pyclass(module = "llama_stack._core", frozen)]
pub struct Ready;

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[expect(clippy::unused_self, reason = "Python's iterator protocol calls it on the instance")]
    fn __next__(&self) -> Option<()> {
        None
    }
}

//! Rust futures as Python awaitables, and leaving the process cleanly.
//!
//! A call made from Python runs as a task on the tokio runtime; its answer is handed back to the
//! asyncio loop that awaits it with `call_soon_threadsafe`. Two rules keep interpreter exit safe
//! (see docs/bindings.md):
//!
//! - No thread of ours enters the interpreter once it starts shutting down: every entry goes
//!   through [`attach`], which an exit hook closes (registered with `atexit` when the module is
//!   imported, so it runs before finalization begins). An answer that arrives later is dropped.
//! - No native work (llama.cpp) still runs when the process exits: the hook cancels every call
//!   in flight, closes open streams, shuts the stacks down and waits for the generation threads.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::stack::Stack;

/// Builds the Python value of an answer; runs attached to the interpreter.
pub type Deliver = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

/// Slot of a streamed answer shared by its iterator and the exit hook.
pub type StreamSlot = tokio::sync::Mutex<Option<futures::stream::BoxStream<'static, crate::Result<bytes::Bytes>>>>;

/// Open until the exit hook runs; threads enter the interpreter only while holding it open.
static GATE: RwLock<bool> = RwLock::new(true);
/// Calls in flight, so the exit hook can cancel them.
static TASKS: Mutex<Option<HashMap<u64, AbortHandle>>> = Mutex::new(None);
static NEXT_TASK: AtomicU64 = AtomicU64::new(0);
static STREAMS: Mutex<Vec<Weak<StreamSlot>>> = Mutex::new(Vec::new());
static STACKS: Mutex<Vec<Weak<Stack>>> = Mutex::new(Vec::new());

/// How long the exit hook lets stacks shut down and streams close.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);
/// How long the exit hook waits for native work (a llama.cpp step) to notice it must stop.
const NATIVE_WORK_LIMIT: Duration = Duration::from_secs(30);

fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Whether calls are still taken (false once the exit hook ran).
pub fn is_open() -> bool {
    *GATE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` attached to the interpreter from a thread of ours, unless the interpreter is
/// exiting (then `None`, and `f` is dropped unrun).
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let open = GATE.read().unwrap_or_else(PoisonError::into_inner);
    if !*open {
        return None;
    }
    let out = Python::try_attach(f);
    drop(open);
    out
}

/// Keeps a stream reachable by the exit hook.
pub fn track_stream(slot: &Arc<StreamSlot>) {
    let mut streams = STREAMS.lock().unwrap_or_else(PoisonError::into_inner);
    streams.retain(|w| w.strong_count() > 0);
    streams.push(Arc::downgrade(slot));
}

/// Keeps a stack reachable by the exit hook.
pub fn track_stack(stack: &Arc<Stack>) {
    let mut stacks = STACKS.lock().unwrap_or_else(PoisonError::into_inner);
    stacks.retain(|w| w.strong_count() > 0);
    stacks.push(Arc::downgrade(stack));
}

/// Cancels the Rust task when the asyncio future is cancelled (or otherwise finished first).
#[pyclass(module = "llama_stack._core", frozen)]
struct OnDone {
    cancel: Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl OnDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        if let Some(tx) = self.cancel.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = tx.send(());
        }
    }
}

/// Sets the outcome of an asyncio future on its own loop, unless it is already done (cancelled).
#[pyfunction]
fn set_outcome(future: &Bound<'_, PyAny>, ok: bool, value: Bound<'_, PyAny>) -> PyResult<()> {
    let py = future.py();
    if future.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { pyo3::intern!(py, "set_result") } else { pyo3::intern!(py, "set_exception") };
    future.call_method1(method, (value,))?;
    Ok(())
}

/// Runs `fut` on the runtime and returns an asyncio future of its answer, bound to the running
/// loop. Cancelling the asyncio future drops `fut` (which cancels the work behind it).
pub fn spawn<F>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<Deliver>> + Send + 'static,
{
    if !is_open() {
        return Err(PyRuntimeError::new_err("the interpreter is exiting; the stack takes no more calls"));
    }
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    future.call_method1("add_done_callback", (OnDone { cancel: Mutex::new(Some(cancel_tx)) },))?;
    let target = (event_loop.unbind(), future.clone().unbind());

    let id = NEXT_TASK.fetch_add(1, Ordering::Relaxed);
    // Held while spawning, so the task cannot forget itself before it is recorded.
    let mut tasks = TASKS.lock().unwrap_or_else(PoisonError::into_inner);
    let handle = runtime().spawn(async move {
        let outcome = tokio::select! {
            r = fut => Some(r),
            // Cancelled, or the future went away: nobody waits for the answer.
            _ = cancel_rx => None,
        };
        if let Some(map) = TASKS.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            map.remove(&id);
        }
        if let Some(result) = outcome {
            // Entering the interpreter may wait for the GIL: not on an async worker.
            let _ = tokio::task::spawn_blocking(move || deliver(target, result)).await;
        }
    });
    tasks.get_or_insert_with(HashMap::new).insert(id, handle.abort_handle());
    Ok(future)
}

fn deliver((event_loop, future): (Py<PyAny>, Py<PyAny>), result: PyResult<Deliver>) {
    attach(move |py| {
        let (ok, value) = match result.and_then(|make| make(py)) {
            Ok(v) => (true, v),
            Err(e) => (false, e.into_value(py).into_any()),
        };
        let Ok(set) = wrap_pyfunction!(set_outcome, py) else { return };
        // A closed loop refuses the call: nobody is left to read the answer.
        let _ = event_loop.bind(py).call_method1(pyo3::intern!(py, "call_soon_threadsafe"), (set, future, ok, value));
    });
}

/// The exit hook (registered with `atexit`): from now on no thread of ours enters the
/// interpreter; calls in flight are cancelled, streams closed, stacks shut down, and native work
/// is stopped and waited for, so nothing runs inside llama.cpp while the process exits.
#[pyfunction]
pub fn release_at_exit(py: Python<'_>) {
    py.detach(|| {
        // Waits for threads inside the interpreter to leave (the GIL is released here).
        *GATE.write().unwrap_or_else(PoisonError::into_inner) = false;
        let tasks: Vec<AbortHandle> = TASKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|m| m.into_values().collect())
            .unwrap_or_default();
        for task in &tasks {
            task.abort();
        }
        let streams: Vec<Arc<StreamSlot>> =
            STREAMS.lock().unwrap_or_else(PoisonError::into_inner).drain(..).filter_map(|w| w.upgrade()).collect();
        let stacks: Vec<Arc<Stack>> =
            STACKS.lock().unwrap_or_else(PoisonError::into_inner).drain(..).filter_map(|w| w.upgrade()).collect();
        runtime().block_on(async move {
            let closing = async {
                for slot in streams {
                    slot.lock().await.take();
                }
                for stack in stacks {
                    stack.shutdown().await;
                }
            };
            if tokio::time::timeout(SHUTDOWN_LIMIT, closing).await.is_err() {
                tracing::warn!("stack shutdown at exit took over {}s; exiting anyway", SHUTDOWN_LIMIT.as_secs());
            }
        });
        let left = crate::native_work::stop_and_wait(NATIVE_WORK_LIMIT);
        if left > 0 {
            tracing::warn!("{left} model computation(s) still running at exit");
        }
    });
}

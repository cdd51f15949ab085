//! Native work running on threads of its own (llama.cpp generation, sentence embeddings), and
//! stopping it before the process exits.
//!
//! A process that exits while such a thread is still inside llama.cpp crashes: `exit()` runs the
//! library's static destructors, which free the state that thread is using. So each piece of
//! native work holds a [`Work`] guard for as long as it runs, checks [`stopping`] between steps,
//! and whoever ends the process (the Python bindings' exit hook) calls [`stop_and_wait`] first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

static STOPPING: AtomicBool = AtomicBool::new(false);
static RUNNING: Mutex<usize> = Mutex::new(0);
static IDLE: Condvar = Condvar::new();

/// Whether the process is on its way out: native work should end at its next step.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// Held by a thread while it runs native work.
#[must_use = "the work counts as running only while the guard is held"]
pub struct Work(());

impl Work {
    pub fn enter() -> Self {
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Self(())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        if *running == 0 {
            IDLE.notify_all();
        }
    }
}

/// Asks all native work to stop and waits until none runs, for at most `limit`. Returns how many
/// pieces were still running when the wait ended (0 when everything stopped).
pub fn stop_and_wait(limit: Duration) -> usize {
    STOPPING.store(true, Ordering::Release);
    let deadline = Instant::now() + limit;
    let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    while *running > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        running = IDLE.wait_timeout(running, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    *running
}

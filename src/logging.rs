//! Process-wide log setup: human-readable lines on stderr, filtered by `LLAMA_STACK_LOG`
//! (tracing's filter syntax, default `info`).

use std::sync::Once;

static INIT: Once = Once::new();

/// Installs the subscriber once; later calls do nothing (the bindings may call it per stack).
pub fn init() {
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("LLAMA_STACK_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
    });
}

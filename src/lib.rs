//! llama-stack-rs: the Llama Stack 0.0.41 API with a Rust core.
//!
//! The core (everything but `python`) knows nothing of Python: datatypes, the run config and
//! its resolver, routing tables, providers, the operation table shared by the HTTP server and
//! the bindings, and the server itself.

pub mod agents;
pub mod api;
pub mod config;
pub mod embed;
pub mod error;
pub mod kvstore;
pub mod logging;
pub mod memory;
pub mod model_cache;
pub mod native_work;
pub mod prompt;
pub mod providers;
pub mod routing;
pub mod safety;
pub mod server;
pub mod stack;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;

pub use error::{Error, Result};

#[cfg(feature = "python")]
mod python;

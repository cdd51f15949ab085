//! Serde types for every schema of the 0.0.41 wire contract, one module per upstream API
//! module. Field names, defaults and discriminators follow upstream's pydantic models, so the
//! JSON pydantic writes reads back here unchanged.

pub mod agents;
pub mod common;
pub mod datasets;
pub mod evaluations;
pub mod inference;
pub mod inspect;
pub(crate) mod macros;
pub mod memory;
pub mod memory_banks;
pub mod models;
pub mod post_training;
pub mod reward_scoring;
pub mod safety;
pub mod schema;
pub mod shields;
pub mod synthetic_data_generation;
pub mod telemetry;

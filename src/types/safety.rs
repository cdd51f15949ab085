//! `llama_stack.apis.safety`: shield runs and their verdicts.

use serde::{Deserialize, Serialize};

use super::common::{JsonObject, Message};
use super::macros::string_enum;

string_enum!(ViolationLevel { Info = "info", Warn = "warn", Error = "error" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyViolation {
    pub violation_level: ViolationLevel,
    #[serde(default)]
    pub user_message: Option<String>,
    #[serde(default)]
    pub metadata: JsonObject,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunShieldResponse {
    #[serde(default)]
    pub violation: Option<SafetyViolation>,
}

/// Upstream's server makes `params` optional although the spec lists it as required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunShieldRequest {
    pub shield_type: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub params: Option<JsonObject>,
}

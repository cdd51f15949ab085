//! `llama_stack.apis.shields`: shield definitions as the routing table keeps them.

use serde::{Deserialize, Serialize};

use super::common::JsonObject;
use super::macros::string_enum;

string_enum!(ShieldType {
    GenericContentShield = "generic_content_shield",
    LlamaGuard = "llama_guard",
    CodeScanner = "code_scanner",
    PromptGuard = "prompt_guard",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShieldDef {
    pub identifier: String,
    #[serde(rename = "type")]
    pub shield_type: String,
    #[serde(default)]
    pub params: JsonObject,
}

/// `ShieldDefWithProvider`. An empty `provider_id` on registration means "the only provider".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShieldDefWithProvider {
    pub identifier: String,
    #[serde(rename = "type")]
    pub shield_type: String,
    #[serde(default)]
    pub params: JsonObject,
    #[serde(default)]
    pub provider_id: String,
}

impl ShieldDef {
    pub fn with_provider(self, provider_id: &str) -> ShieldDefWithProvider {
        ShieldDefWithProvider {
            identifier: self.identifier,
            shield_type: self.shield_type,
            params: self.params,
            provider_id: provider_id.to_owned(),
        }
    }
}

impl ShieldDefWithProvider {
    pub fn without_provider(&self) -> ShieldDef {
        ShieldDef {
            identifier: self.identifier.clone(),
            shield_type: self.shield_type.clone(),
            params: self.params.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterShieldRequest {
    pub shield: ShieldDefWithProvider,
}

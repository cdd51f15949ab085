//! `llama_stack.apis.models`: model definitions as the routing table keeps them.

use serde::{Deserialize, Serialize};

use super::common::JsonObject;

/// A model as a provider reports it, before it is tied to a provider instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDef {
    pub identifier: String,
    pub llama_model: String,
    #[serde(default)]
    pub metadata: JsonObject,
}

/// `ModelDefWithProvider`. An empty `provider_id` on registration means "the only provider".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDefWithProvider {
    pub identifier: String,
    pub llama_model: String,
    #[serde(default)]
    pub metadata: JsonObject,
    #[serde(default)]
    pub provider_id: String,
}

impl ModelDef {
    pub fn with_provider(self, provider_id: &str) -> ModelDefWithProvider {
        ModelDefWithProvider {
            identifier: self.identifier,
            llama_model: self.llama_model,
            metadata: self.metadata,
            provider_id: provider_id.to_owned(),
        }
    }
}

impl ModelDefWithProvider {
    pub fn without_provider(&self) -> ModelDef {
        ModelDef {
            identifier: self.identifier.clone(),
            llama_model: self.llama_model.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterModelRequest {
    pub model: ModelDefWithProvider,
}

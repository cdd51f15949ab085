//! Hosted services (Together, Fireworks, Databricks, Bedrock) name the Llama models they host
//! their own way. A provider for one of them serves a fixed list of Llama ids, each mapped to the
//! service's name, and refuses to register anything else. A registration may instead name the
//! service's model itself in `metadata.provider_model`, for a model the list does not know yet.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// The metadata key that names the service's own model for a registration.
pub const PROVIDER_MODEL_KEY: &str = "provider_model";

/// The backend model a registration names in `metadata.<key>`, if it names one: a non-empty
/// string, trimmed; anything else there is refused, saying it must be the name of `what`.
pub fn metadata_model<'a>(model: &'a ModelDefWithProvider, key: &str, what: &str) -> Result<Option<&'a str>> {
    match model.metadata.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(other) => Err(Error::invalid(format!(
            "model `{}`: `metadata.{key}` must be the name of {what}, got {other}",
            model.identifier
        ))),
    }
}

/// Llama ids and the service's names for them, in the order they are listed.
#[derive(Debug, Clone)]
pub struct ModelMap {
    provider_id: String,
    /// What the service is called in messages ("Together", "Bedrock").
    service: &'static str,
    entries: &'static [(&'static str, &'static str)],
}

impl ModelMap {
    pub fn new(provider_id: &str, service: &'static str, entries: &'static [(&'static str, &'static str)]) -> Self {
        Self { provider_id: provider_id.to_owned(), service, entries }
    }

    /// Every mapped model, listed under its Llama id.
    pub fn models(&self) -> Vec<ModelDef> {
        self.entries
            .iter()
            .map(|(llama, name)| ModelDef {
                identifier: (*llama).to_owned(),
                llama_model: (*llama).to_owned(),
                metadata: json!({PROVIDER_MODEL_KEY: name}).as_object().cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The service's name for `model`: `metadata.provider_model` when given, else the mapped
    /// name of its `llama_model`. Unknown ids are refused with the list of known ones.
    pub fn name_for(&self, model: &ModelDefWithProvider) -> Result<String> {
        if let Some(name) = metadata_model(model, PROVIDER_MODEL_KEY, &format!("a {} model", self.service))? {
            return Ok(name.to_owned());
        }
        if let Some((_, name)) = self.entries.iter().find(|(llama, _)| *llama == model.llama_model) {
            return Ok((*name).to_owned());
        }
        let known: Vec<&str> = self.entries.iter().map(|(llama, _)| *llama).collect();
        Err(Error::invalid(format!(
            "model `{}` (llama_model `{}`) cannot be served by provider `{}`: it serves {}; to use another {} \
             model, register it with `metadata.{PROVIDER_MODEL_KEY}` set to the {} name",
            model.identifier,
            model.llama_model,
            self.provider_id,
            known.join(", "),
            self.service,
            self.service
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::JsonObject;

    const MAP: &[(&str, &str)] =
        &[("Llama3.1-8B-Instruct", "svc/llama-8b"), ("Llama3.1-70B-Instruct", "svc/llama-70b")];

    fn model(llama: &str, metadata: &Value) -> ModelDefWithProvider {
        ModelDefWithProvider {
            identifier: "my-model".into(),
            llama_model: llama.into(),
            metadata: metadata.as_object().cloned().unwrap_or_else(JsonObject::new),
            provider_id: "svc".into(),
        }
    }

    #[test]
    fn lists_under_llama_ids_and_maps_names() {
        let map = ModelMap::new("svc", "Svc", MAP);
        let listed = map.models();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].identifier, "Llama3.1-8B-Instruct");
        assert_eq!(listed[0].metadata[PROVIDER_MODEL_KEY], "svc/llama-8b");
        assert_eq!(map.name_for(&model("Llama3.1-70B-Instruct", &json!({}))).unwrap(), "svc/llama-70b");
        assert_eq!(map.name_for(&model("anything", &json!({PROVIDER_MODEL_KEY: " svc/new "}))).unwrap(), "svc/new");
    }

    #[test]
    fn unknown_models_are_refused_with_the_known_ones() {
        let map = ModelMap::new("svc", "Svc", MAP);
        let e = map.name_for(&model("Llama3.2-1B-Instruct", &json!({}))).unwrap_err().to_string();
        assert!(e.contains("Llama3.2-1B-Instruct") && e.contains("Llama3.1-8B-Instruct, Llama3.1-70B-Instruct"), "{e}");
        let e = map.name_for(&model("x", &json!({PROVIDER_MODEL_KEY: 3}))).unwrap_err().to_string();
        assert!(e.contains("metadata.provider_model"), "{e}");
    }
}

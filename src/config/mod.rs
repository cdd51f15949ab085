//! The run config (`<name>-run.yaml`): upstream's version "2" format plus optional static
//! registrations and a metadata store, read with errors that name the line or the field.

mod paths;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use paths::{config_dir, expand_home, runtime_dir};

use crate::error::{Error, Result};
use crate::kvstore::KvStoreConfig;
use crate::types::common::{JsonObject, Timestamp};
use crate::types::macros::string_enum;
use crate::types::memory_banks::MemoryBankDef;
use crate::types::models::ModelDefWithProvider;
use crate::types::shields::ShieldDefWithProvider;

string_enum!(
    /// The APIs a stack can serve, in upstream's order.
    Api {
        Inference = "inference",
        Safety = "safety",
        Agents = "agents",
        Memory = "memory",
        Telemetry = "telemetry",
        Models = "models",
        Shields = "shields",
        MemoryBanks = "memory_banks",
        Inspect = "inspect",
    }
);

impl Api {
    /// APIs a run config gives providers for; the others are built by the stack itself.
    pub const PROVIDABLE: &'static [Self] =
        &[Self::Inference, Self::Safety, Self::Agents, Self::Memory, Self::Telemetry];

    /// The routing table that serves the objects this API routes by.
    pub fn routing_table(self) -> Option<Self> {
        match self {
            Self::Inference => Some(Self::Models),
            Self::Safety => Some(Self::Shields),
            Self::Memory => Some(Self::MemoryBanks),
            _ => None,
        }
    }

    pub fn routed_by(self) -> Option<Self> {
        match self {
            Self::Models => Some(Self::Inference),
            Self::Shields => Some(Self::Safety),
            Self::MemoryBanks => Some(Self::Memory),
            _ => None,
        }
    }
}

/// One configured provider instance.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub provider_id: String,
    pub provider_type: String,
    #[serde(default)]
    pub config: JsonObject,
}

/// Secret-named config fields (keys, passwords, tokens) are shown redacted.
impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("provider_id", &self.provider_id)
            .field("provider_type", &self.provider_type)
            .field("config", &crate::telemetry::redact::redact_object(&self.config))
            .finish()
    }
}

const RUN_CONFIG_VERSION: &str = "2";

/// `StackRunConfig`. Upstream's fields first; `models`, `shields`, `memory_banks` and
/// `metadata_store` are additions (static registration, persistence of registrations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackRunConfig {
    #[serde(default = "default_version", deserialize_with = "version_text")]
    pub version: String,
    #[serde(default = "Timestamp::now")]
    pub built_at: Timestamp,
    #[serde(default = "default_image_name")]
    pub image_name: String,
    #[serde(default)]
    pub docker_image: Option<String>,
    #[serde(default)]
    pub conda_env: Option<String>,
    #[serde(default)]
    pub apis: Vec<String>,
    pub providers: IndexMap<String, Vec<Provider>>,
    #[serde(default)]
    pub models: Vec<ModelDefWithProvider>,
    #[serde(default)]
    pub shields: Vec<ShieldDefWithProvider>,
    #[serde(default)]
    pub memory_banks: Vec<MemoryBankDef>,
    #[serde(default)]
    pub metadata_store: Option<KvStoreConfig>,
}

fn default_version() -> String {
    RUN_CONFIG_VERSION.to_owned()
}

fn default_image_name() -> String {
    "llamastack".to_owned()
}

/// YAML writes `version: 2` as a number; upstream compares with the string "2".
fn version_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("`version` must be a string, got {other}"))),
    }
}

impl StackRunConfig {
    /// Reads a run config from YAML (JSON is YAML too). `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self> {
        let value: Value = serde_norway::from_str(text)
            .map_err(|e| Error::config(format!("cannot parse run config `{origin}`: {e}")))?;
        Self::from_value(value, origin)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = fs_err::read_to_string(path).map_err(|e| Error::config(format!("cannot read run config: {e}")))?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    pub fn from_value(value: Value, origin: &str) -> Result<Self> {
        let value = upgrade_legacy(value, origin)?;
        let cfg: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            Error::config(format!("run config `{origin}`: field `{path}`: {}", e.inner()))
        })?;
        cfg.check(origin)?;
        Ok(cfg)
    }

    /// Structural checks that need more than the schema: known API names, unique provider ids.
    fn check(&self, origin: &str) -> Result<()> {
        for name in &self.apis {
            if Api::parse(name).is_none() {
                return Err(Error::config(format!(
                    "run config `{origin}`: `apis` names unknown API `{name}`; known APIs: {}",
                    api_names()
                )));
            }
        }
        for (api_name, providers) in &self.providers {
            let Some(api) = Api::parse(api_name) else {
                return Err(Error::config(format!(
                    "run config `{origin}`: `providers.{api_name}`: unknown API `{api_name}`; known APIs: {}",
                    api_names()
                )));
            };
            if !Api::PROVIDABLE.contains(&api) {
                return Err(Error::config(format!(
                    "run config `{origin}`: `providers.{api_name}`: the `{api_name}` API is provided by the stack itself \
                     and cannot be configured; configure providers for `{}` instead",
                    api.routed_by().map_or("inference", Api::as_str)
                )));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, p) in providers.iter().enumerate() {
                if p.provider_id.trim().is_empty() {
                    return Err(Error::config(format!(
                        "run config `{origin}`: `providers.{api_name}[{i}].provider_id` must not be empty"
                    )));
                }
                if !seen.insert(p.provider_id.as_str()) {
                    return Err(Error::config(format!(
                        "run config `{origin}`: `providers.{api_name}[{i}]`: duplicate provider_id `{}`",
                        p.provider_id
                    )));
                }
            }
        }
        Ok(())
    }

    /// The APIs to serve: `apis` when given, else every configured API. The routing tables and
    /// inspect come along with their routers.
    pub fn served_apis(&self) -> Vec<Api> {
        let mut out: Vec<Api> = if self.apis.is_empty() {
            self.providers.keys().filter_map(|k| Api::parse(k)).collect()
        } else {
            self.apis.iter().filter_map(|k| Api::parse(k)).collect()
        };
        for api in out.clone() {
            if let Some(table) = api.routing_table() {
                if !out.contains(&table) {
                    out.push(table);
                }
            }
        }
        if !out.contains(&Api::Inspect) {
            out.push(Api::Inspect);
        }
        out
    }

    pub fn providers_for(&self, api: Api) -> &[Provider] {
        self.providers.get(api.as_str()).map_or(&[], Vec::as_slice)
    }

    pub fn to_yaml(&self) -> Result<String> {
        serde_norway::to_string(self).map_err(|e| Error::internal(format!("cannot write run config: {e}")))
    }
}

fn api_names() -> String {
    Api::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
}

/// Older run configs (before version "2") carried a `routing_table`; turn them into providers.
fn upgrade_legacy(mut value: Value, origin: &str) -> Result<Value> {
    let Value::Object(map) = &mut value else {
        return Err(Error::config(format!("run config `{origin}` must be a mapping at the top level")));
    };
    let is_current = match map.get("version") {
        Some(Value::String(s)) => s == RUN_CONFIG_VERSION,
        Some(Value::Number(n)) => n.to_string() == RUN_CONFIG_VERSION,
        _ => true,
    };
    if is_current || !map.contains_key("routing_table") {
        return Ok(value);
    }
    let mut providers: IndexMap<String, Vec<Value>> = IndexMap::new();
    if let Some(Value::Object(table)) = map.remove("routing_table") {
        for (api, entries) in table {
            let entries = entries.as_array().cloned().unwrap_or_default();
            let many = entries.len() > 1;
            for (i, entry) in entries.into_iter().enumerate() {
                let ptype = entry.get("provider_type").and_then(Value::as_str).unwrap_or_default().to_owned();
                let id = if many { format!("{ptype}-{i:02}") } else { ptype.clone() };
                let config = entry.get("config").cloned().unwrap_or_else(|| Value::Object(JsonObject::new()));
                providers.entry(api.clone()).or_default().push(serde_json::json!({
                    "provider_id": id, "provider_type": ptype, "config": config,
                }));
            }
        }
    }
    for key in ["api_providers", "provider_map"] {
        if let Some(Value::Object(m)) = map.remove(key) {
            for (api, entry) in m {
                if let Some(ptype) = entry.get("provider_type").and_then(Value::as_str) {
                    let config = entry.get("config").cloned().unwrap_or_else(|| Value::Object(JsonObject::new()));
                    providers.entry(api).or_default().push(serde_json::json!({
                        "provider_id": ptype, "provider_type": ptype, "config": config,
                    }));
                }
            }
        }
    }
    if let Some(apis) = map.remove("apis_to_serve") {
        map.insert("apis".into(), apis);
    }
    map.insert("providers".into(), serde_json::to_value(providers).map_err(|e| Error::internal(e.to_string()))?);
    map.insert("version".into(), Value::String(RUN_CONFIG_VERSION.into()));
    map.insert("built_at".into(), Value::String(Timestamp::now().as_str().to_owned()));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r"
version: '2'
built_at: '2024-10-10T12:00:00'
image_name: demo
apis: [inference, models]
providers:
  inference:
  - provider_id: a
    provider_type: remote::ollama
    config: {port: 1}
  - provider_id: b
    provider_type: remote::ollama
    config: {}
";

    #[test]
    fn parses_upstream_format() {
        let c = StackRunConfig::from_yaml(SAMPLE, "t").unwrap();
        assert_eq!(c.providers_for(Api::Inference).len(), 2);
        assert_eq!(c.served_apis(), vec![Api::Inference, Api::Models, Api::Inspect]);
    }

    #[test]
    fn numeric_version_is_accepted() {
        let c = StackRunConfig::from_yaml("version: 2\nproviders: {}\n", "t").unwrap();
        assert_eq!(c.version, "2");
    }

    #[test]
    fn errors_name_line_field_and_ids() {
        let e = StackRunConfig::from_yaml("providers: [\n", "t").unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
        let e =
            StackRunConfig::from_yaml("providers:\n  inference:\n  - provider_type: x\n", "t").unwrap_err().to_string();
        assert!(e.contains("providers.inference[0]") && e.contains("provider_id"), "{e}");
        let dup = "providers:\n  inference:\n  - {provider_id: a, provider_type: x}\n  - {provider_id: a, provider_type: y}\n";
        let e = StackRunConfig::from_yaml(dup, "t").unwrap_err().to_string();
        assert!(e.contains("duplicate provider_id `a`"), "{e}");
        let e = StackRunConfig::from_yaml("providers:\n  models: []\n", "t").unwrap_err().to_string();
        assert!(e.contains("provided by the stack itself"), "{e}");
        let e = StackRunConfig::from_yaml("providers:\n  bogus: []\n", "t").unwrap_err().to_string();
        assert!(e.contains("unknown API `bogus`"), "{e}");
    }

    #[test]
    fn legacy_routing_table_is_upgraded() {
        let old = r"
version: v1
apis_to_serve: [inference]
routing_table:
  inference:
  - {routing_key: x, provider_type: remote::ollama, config: {}}
  - {routing_key: y, provider_type: remote::ollama, config: {}}
";
        let c = StackRunConfig::from_yaml(old, "t").unwrap();
        let ids: Vec<_> = c.providers_for(Api::Inference).iter().map(|p| p.provider_id.as_str()).collect();
        assert_eq!(ids, ["remote::ollama-00", "remote::ollama-01"]);
        assert_eq!(c.apis, ["inference"]);
    }
}

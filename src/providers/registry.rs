//! Every provider type a run config may name, with its config fields (names and defaults as
//! upstream 0.0.41 declares them), the APIs it depends on, and how to build it.
//!
//! A type we accept but cannot run in this build still validates its config, so a run config
//! written for upstream loads; its API then answers 501 naming the provider.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::ProviderImpl;
use crate::config::{Api, Provider};
use crate::error::{Error, Result};
use crate::types::common::JsonObject;

/// The JSON kinds a config field can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    List,
}

impl FieldKind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::List => v.is_array(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigField {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// JSON text of the default; `None` means the default is null (when not required).
    pub default: Option<&'static str>,
    pub description: &'static str,
}

impl ConfigField {
    /// The default as a JSON value (null when there is none).
    pub fn default_value(&self) -> Value {
        self.default.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
    }
}

impl Serialize for ConfigField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("name", self.name)?;
        m.serialize_entry("type", &self.kind)?;
        m.serialize_entry("required", &self.required)?;
        m.serialize_entry("default", &self.default_value())?;
        m.serialize_entry("description", self.description)?;
        m.end()
    }
}

/// Builds a provider from its checked config and the APIs it depends on.
pub type BuildFn = fn(BuildArgs) -> futures::future::BoxFuture<'static, Result<ProviderImpl>>;

/// What a provider gets when it is built.
pub struct BuildArgs {
    pub provider_id: String,
    pub config: JsonObject,
    /// The parts of the stack built before this provider's API (see `Deps`).
    pub deps: Deps,
}

/// The routing tables and stores a provider may call into. APIs are built in dependency order
/// (inference, safety, memory, telemetry, agents), so a provider sees the tables of every API
/// built before its own: safety gets `models`, memory gets `models` and `shields`, agents get
/// all three. A table is `None` while its API is not built yet.
#[derive(Clone)]
pub struct Deps {
    pub models: Option<Arc<crate::routing::ModelTable>>,
    pub shields: Option<Arc<crate::routing::ShieldTable>>,
    pub memory_banks: Option<Arc<crate::routing::MemoryBankTable>>,
    pub telemetry: Option<Arc<dyn super::telemetry::TelemetryProvider>>,
    /// The stack's registration store (the run config's `metadata_store`).
    pub store: Arc<dyn crate::kvstore::KvStore>,
}

impl BuildArgs {
    /// Arguments for building one provider on its own (tests, tools): no other API, and an
    /// in-memory store.
    pub fn standalone(provider_id: impl Into<String>, config: JsonObject) -> Self {
        let store: Arc<dyn crate::kvstore::KvStore> = Arc::new(crate::kvstore::MemoryKvStore::default());
        let deps = Deps { models: None, shields: None, memory_banks: None, telemetry: None, store };
        Self { provider_id: provider_id.into(), config, deps }
    }
}

#[derive(Clone, Serialize)]
pub struct ProviderSpec {
    pub api: Api,
    pub provider_type: &'static str,
    pub deps: &'static [Api],
    pub config_fields: &'static [ConfigField],
    /// Why the type cannot run in this build (and what to use instead); empty when it can.
    pub note: &'static str,
    #[serde(skip)]
    pub build: Option<BuildFn>,
}

impl ProviderSpec {
    pub fn available(&self) -> bool {
        self.build.is_some()
    }

    /// Checks `config` against the fields and fills defaults. `at` is the config's path in the
    /// run config, e.g. `providers.inference[0].config`.
    pub fn check_config(&self, config: &JsonObject, at: &str) -> Result<JsonObject> {
        let mut out = config.clone();
        for f in self.config_fields {
            match config.get(f.name) {
                None | Some(Value::Null) if f.required => {
                    return Err(Error::config(format!(
                        "`{at}.{}` is required for provider type `{}` ({})",
                        f.name, self.provider_type, f.description
                    )));
                }
                None => {
                    let d = f.default_value();
                    out.insert(f.name.to_owned(), d);
                }
                Some(Value::Null) => {}
                Some(v) if !f.kind.accepts(v) => {
                    return Err(Error::config(format!(
                        "`{at}.{}` must be {} for provider type `{}`, got {v}",
                        f.name,
                        kind_name(f.kind),
                        self.provider_type
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(out)
    }
}

fn kind_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::String => "a string",
        FieldKind::Integer => "an integer",
        FieldKind::Number => "a number",
        FieldKind::Boolean => "true or false",
        FieldKind::Object => "a mapping",
        FieldKind::List => "a list",
    }
}

macro_rules! fields {
    ($($name:literal : $kind:ident $(= $default:literal)? $(, required $req:literal)? ; $desc:literal),* $(,)?) => {
        &[$(ConfigField {
            name: $name,
            kind: FieldKind::$kind,
            required: fields!(@req $($req)?),
            default: fields!(@def $($default)?),
            description: $desc,
        }),*]
    };
    (@req) => { false };
    (@req $r:literal) => { $r };
    (@def) => { None };
    (@def $d:literal) => { Some($d) };
}

const REMOTE_PASSTHROUGH: &[ConfigField] = fields! {
    "host": String = "\"localhost\""; "host of another Llama Stack server",
    "port": Integer, required true; "port of that server",
};

#[cfg(feature = "embedded")]
const EMBEDDED_BUILD: Option<BuildFn> = Some(super::inference::embedded::build);
#[cfg(feature = "embedded")]
const EMBEDDED_NOTE: &str = "";
#[cfg(not(feature = "embedded"))]
const EMBEDDED_BUILD: Option<BuildFn> = None;
#[cfg(not(feature = "embedded"))]
const EMBEDDED_NOTE: &str = "this build was made without the `embedded` cargo feature";

const NO_GPU: &str = "needs a CUDA GPU, torch and the model's checkpoint in ~/.llama/checkpoints/<model>; use `embedded` (CPU, GGUF models) instead, or `remote::ollama` / `remote::openai`";
const PASSTHROUGH_NOTE: &str = "proxying to another Llama Stack server is not available in this build";

#[allow(clippy::too_many_lines, reason = "a table: one entry per provider type")]
fn inference_specs() -> Vec<ProviderSpec> {
    let api = Api::Inference;
    vec![
        ProviderSpec {
            api,
            provider_type: "remote::ollama",
            deps: &[],
            config_fields: fields! {
                "host": String = "\"localhost\""; "host the Ollama server listens on",
                "port": Integer = "11434"; "port of the Ollama server",
                "url": String; "full base URL; overrides host and port when set",
                "timeout": Number = "300"; "seconds to wait for a whole response from Ollama",
            },
            note: "",
            build: Some(super::inference::ollama::build),
        },
        ProviderSpec {
            api,
            provider_type: "embedded",
            deps: &[],
            config_fields: fields! {
                "model": String = "\"SmolLM2-135M-Instruct\""; "model id from the model cache, or a path to a .gguf file",
                "embedding_model": String = "\"all-MiniLM-L6-v2\""; "sentence-embedding model id, or a folder with safetensors + tokenizer.json; empty to disable",
                "threads": Integer; "CPU threads for generation (default: cores - 1, at least 1)",
                "context_length": Integer = "4096"; "context window in tokens",
                "max_concurrent": Integer = "1"; "requests generated at the same time; others wait their turn",
            },
            note: EMBEDDED_NOTE,
            build: EMBEDDED_BUILD,
        },
        ProviderSpec {
            api,
            provider_type: "remote::openai",
            deps: &[],
            config_fields: fields! {
                "url": String = "\"https://api.openai.com/v1\""; "base URL of an OpenAI-compatible server (ends in /v1)",
                "api_key": String; "API key (or `openai_api_key` in the provider-data header)",
                "models": List; "model names to serve; default: what the server's /models lists",
                "timeout": Number = "300"; "seconds to wait for a whole response",
            },
            note: "",
            build: Some(super::inference::openai::build),
        },
        ProviderSpec {
            api,
            provider_type: "meta-reference",
            deps: &[],
            config_fields: fields! {
                "model": String = "\"Llama3.1-8B-Instruct\""; "model descriptor whose checkpoint is in ~/.llama/checkpoints",
                "quantization": Object; "quantization settings, e.g. {type: fp8}",
                "torch_seed": Integer; "seed for sampling",
                "max_seq_len": Integer = "4096"; "maximum sequence length",
                "max_batch_size": Integer = "1"; "maximum batch size",
            },
            note: NO_GPU,
            build: None,
        },
        ProviderSpec {
            api,
            provider_type: "vllm",
            deps: &[],
            config_fields: fields! {
                "model": String = "\"Llama3.1-8B-Instruct\""; "model descriptor",
                "tensor_parallel_size": Integer = "1"; "number of GPUs",
            },
            note: "needs a GPU and the vllm package; run vLLM's OpenAI-compatible server and use `remote::openai`",
            build: None,
        },
        ProviderSpec {
            api,
            provider_type: "remote::tgi",
            deps: &[],
            config_fields: fields! {
                "url": String, required true; "URL of the text-generation-inference endpoint",
                "api_token": String; "Hugging Face token",
                "timeout": Number = "300"; "seconds to wait for a whole response",
                "tokenizer": String; "path to a Llama 3 tokenizer.model, to fit max_new_tokens to the server's max_total_tokens; unset: the server's own limit applies",
            },
            note: "",
            build: Some(super::inference::tgi::build_tgi),
        },
        ProviderSpec {
            api,
            provider_type: "remote::hf::serverless",
            deps: &[],
            config_fields: fields! {
                "huggingface_repo": String, required true; "model repository on Hugging Face",
                "api_token": String; "Hugging Face token",
                "api_url": String = "\"https://api-inference.huggingface.co\""; "base URL of the serverless Inference API (models are under /models/<repo>)",
                "timeout": Number = "300"; "seconds to wait for a whole response",
                "tokenizer": String; "path to a Llama 3 tokenizer.model, to fit max_new_tokens to the model's max_total_tokens",
            },
            note: "",
            build: Some(super::inference::tgi::build_serverless),
        },
        ProviderSpec {
            api,
            provider_type: "remote::hf::endpoint",
            deps: &[],
            config_fields: fields! {
                "endpoint_name": String, required true; "inference endpoint as namespace/name",
                "api_token": String; "Hugging Face token",
                "api_url": String = "\"https://api.endpoints.huggingface.cloud/v2\""; "base URL of the Inference Endpoints API",
                "wait": Number = "10"; "seconds a request waits for an endpoint that is starting before answering 503",
                "timeout": Number = "300"; "seconds to wait for a whole response",
                "tokenizer": String; "path to a Llama 3 tokenizer.model, to fit max_new_tokens to the endpoint's max_total_tokens",
            },
            note: "",
            build: Some(super::inference::tgi::build_endpoint),
        },
        ProviderSpec {
            api,
            provider_type: "remote::together",
            deps: &[],
            config_fields: fields! {
                "url": String = "\"https://api.together.xyz/v1\""; "Together API base URL",
                "api_key": String; "Together API key (or `together_api_key` in the provider-data header)",
                "timeout": Number = "300"; "seconds to wait for a whole response",
            },
            note: "",
            build: Some(super::inference::openai::hosted::build_together),
        },
        ProviderSpec {
            api,
            provider_type: "remote::fireworks",
            deps: &[],
            config_fields: fields! {
                "url": String = "\"https://api.fireworks.ai/inference\""; "Fireworks API base URL",
                "api_key": String = "\"\""; "Fireworks API key (or `fireworks_api_key` in the provider-data header)",
                "timeout": Number = "300"; "seconds to wait for a whole response",
            },
            note: "",
            build: Some(super::inference::openai::hosted::build_fireworks),
        },
        ProviderSpec {
            api,
            provider_type: "remote::bedrock",
            deps: &[],
            config_fields: fields! {
                "aws_access_key_id": String; "AWS access key id",
                "aws_secret_access_key": String; "AWS secret access key",
                "aws_session_token": String; "AWS session token",
                "region_name": String; "AWS region",
                "profile_name": String; "AWS profile",
                "total_max_attempts": Integer; "maximum attempts per call",
                "retry_mode": String; "retry mode (legacy, standard, adaptive)",
                "connect_timeout": Number = "60"; "connect timeout in seconds",
                "read_timeout": Number = "60"; "read timeout in seconds",
                "endpoint_url": String; "Bedrock Runtime URL; default https://bedrock-runtime.{region}.amazonaws.com, or AWS_ENDPOINT_URL_BEDROCK_RUNTIME / AWS_ENDPOINT_URL",
            },
            note: "",
            build: Some(super::inference::bedrock::build),
        },
        ProviderSpec {
            api,
            provider_type: "remote::databricks",
            deps: &[],
            config_fields: fields! {
                "url": String; "Databricks serving endpoints URL (https://<workspace>/serving-endpoints)",
                "api_token": String; "Databricks token",
                "timeout": Number = "300"; "seconds to wait for a whole response",
            },
            note: "",
            build: Some(super::inference::openai::hosted::build_databricks),
        },
        ProviderSpec {
            api,
            provider_type: "remote",
            deps: &[],
            config_fields: REMOTE_PASSTHROUGH,
            note: PASSTHROUGH_NOTE,
            build: None,
        },
    ]
}

fn safety_specs() -> Vec<ProviderSpec> {
    let api = Api::Safety;
    vec![
        ProviderSpec {
            api,
            provider_type: "meta-reference",
            deps: &[Api::Inference],
            config_fields: fields! {
                "llama_guard_shield": Object; "Llama Guard settings: {model, excluded_categories, disable_input_check, disable_output_check}; serves the llama_guard shield",
                "enable_prompt_guard": Boolean = "false"; "serve the prompt_guard shield (Prompt-Guard-86M run in process)",
                "prompt_guard_model_dir": String; "Prompt Guard model folder (config.json, model.safetensors, tokenizer.json); default $LLAMA_STACK_CONFIG_DIR/checkpoints/Prompt-Guard-86M",
                "prompt_guard_threshold": Number = "0.9"; "probability above which prompt_guard reports a violation",
                "prompt_guard_type": String = "\"injection\""; "what prompt_guard flags when the shield's params.prompt_guard_type does not say: injection (p(INJECTION)+p(JAILBREAK)) or jailbreak (p(JAILBREAK))",
            },
            note: "",
            build: Some(crate::safety::meta_reference::build),
        },
        ProviderSpec {
            api,
            provider_type: "meta-reference/codeshield",
            deps: &[],
            config_fields: &[],
            note: "",
            build: Some(crate::safety::codeshield::build),
        },
        ProviderSpec {
            api,
            provider_type: "remote::together",
            deps: &[],
            config_fields: fields! {
                "url": String = "\"https://api.together.xyz/v1\""; "Together API base URL",
                "api_key": String; "Together API key (or `together_api_key` in the provider-data header)",
            },
            note: "",
            build: Some(crate::safety::together::build),
        },
        ProviderSpec {
            api,
            provider_type: "remote::bedrock",
            deps: &[],
            config_fields: fields! { "aws_profile": String = "\"default\""; "AWS profile with the credentials and region (keys and region may also come from the AWS_* environment variables)" },
            note: "",
            build: Some(crate::safety::bedrock::build),
        },
        ProviderSpec {
            api,
            provider_type: "remote",
            deps: &[],
            config_fields: REMOTE_PASSTHROUGH,
            note: PASSTHROUGH_NOTE,
            build: None,
        },
    ]
}

fn memory_specs() -> Vec<ProviderSpec> {
    let api = Api::Memory;
    vec![
        ProviderSpec {
            api,
            provider_type: "meta-reference",
            deps: &[],
            config_fields: fields! {
                "kvstore": Object; "kv store for banks, documents and vectors; unset: the stack's metadata_store",
                "allow_private_urls": Boolean = "false"; "let documents be fetched from private, loopback and link-local addresses",
                "max_document_bytes": Integer = "10485760"; "largest document, in bytes, fetched or decoded",
                "fetch_timeout_seconds": Number = "30"; "time limit for fetching one document URL",
                "tokenizer": String; "path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
                "exact_search_limit": Integer = "20000"; "vector banks with more chunks use the approximate index",
            },
            note: "",
            build: Some(crate::memory::build_meta_reference),
        },
        ProviderSpec {
            api,
            provider_type: "remote::chromadb",
            deps: &[],
            config_fields: fields! {
                "host": String = "\"localhost\""; "Chroma host",
                "port": Integer, required true; "Chroma port",
                "tenant": String = "\"default_tenant\""; "Chroma tenant",
                "database": String = "\"default_database\""; "Chroma database",
                "allow_private_urls": Boolean = "false"; "let documents be fetched from private, loopback and link-local addresses",
                "tokenizer": String; "path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
            },
            note: "",
            build: Some(crate::memory::build_chroma),
        },
        ProviderSpec {
            api,
            provider_type: "remote::pgvector",
            deps: &[],
            config_fields: fields! {
                "host": String = "\"localhost\""; "PostgreSQL host",
                "port": Integer = "5432"; "PostgreSQL port",
                "db": String, required true; "database name",
                "user": String, required true; "user name",
                "password": String, required true; "password",
                "allow_private_urls": Boolean = "false"; "let documents be fetched from private, loopback and link-local addresses",
                "tokenizer": String; "path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
            },
            note: "",
            build: Some(crate::memory::build_pgvector),
        },
        ProviderSpec {
            api,
            provider_type: "remote::weaviate",
            deps: &[],
            config_fields: fields! {
                "allow_private_urls": Boolean = "false"; "let documents be fetched from private, loopback and link-local addresses",
                "tokenizer": String; "path to a Llama 3 tokenizer.model for chunking; unset: the one in llama_models",
            },
            note: "",
            build: Some(crate::memory::build_weaviate),
        },
        ProviderSpec {
            api,
            provider_type: "remote",
            deps: &[],
            config_fields: REMOTE_PASSTHROUGH,
            note: PASSTHROUGH_NOTE,
            build: None,
        },
    ]
}

fn other_specs() -> Vec<ProviderSpec> {
    vec![
        ProviderSpec {
            api: Api::Agents,
            provider_type: "meta-reference",
            deps: &[Api::Inference, Api::Safety, Api::Memory, Api::MemoryBanks],
            config_fields: fields! {
                "persistence_store": Object = "{\"type\": \"sqlite\"}"; "kv store for agents, sessions and turns",
            },
            note: "",
            build: Some(crate::agents::build),
        },
        ProviderSpec {
            api: Api::Agents,
            provider_type: "remote",
            deps: &[],
            config_fields: REMOTE_PASSTHROUGH,
            note: PASSTHROUGH_NOTE,
            build: None,
        },
        ProviderSpec {
            api: Api::Telemetry,
            provider_type: "meta-reference",
            deps: &[],
            config_fields: fields! {
                "persistence_store": Object; "kv store where traces survive a restart (none: memory only)",
            },
            note: "",
            build: Some(crate::telemetry::build_console),
        },
        ProviderSpec {
            api: Api::Telemetry,
            provider_type: "remote::opentelemetry-jaeger",
            deps: &[],
            config_fields: fields! {
                "jaeger_host": String = "\"localhost\""; "Jaeger host (OTLP/HTTP on port 4318)",
                "jaeger_port": Integer = "6831"; "Jaeger port; upstream's 6831 (agent UDP) means OTLP/HTTP 4318",
                "otlp_endpoint": String; "OTLP/HTTP base URL, overrides host and port",
                "service_name": String = "\"llama-stack\""; "service.name of the exported resource",
            },
            note: "",
            build: Some(crate::telemetry::build_otlp),
        },
        ProviderSpec {
            api: Api::Telemetry,
            provider_type: "remote",
            deps: &[],
            config_fields: REMOTE_PASSTHROUGH,
            note: PASSTHROUGH_NOTE,
            build: None,
        },
    ]
}

/// Every provider type, grouped by API in upstream's order.
pub fn all() -> Vec<ProviderSpec> {
    let mut v = inference_specs();
    v.extend(safety_specs());
    v.extend(memory_specs());
    v.extend(other_specs());
    v
}

/// Looks up a provider type for an API; the error lists the valid types.
pub fn find(api: Api, provider_type: &str, at: &str) -> Result<ProviderSpec> {
    let specs: Vec<ProviderSpec> = all().into_iter().filter(|s| s.api == api).collect();
    let names: Vec<&str> = specs.iter().map(|s| s.provider_type).collect();
    let names = names.join(", ");
    specs.into_iter().find(|s| s.provider_type == provider_type).ok_or_else(|| {
        Error::config(format!(
            "`{at}.provider_type`: unknown provider type `{provider_type}` for the {api} API; valid types: {names}"
        ))
    })
}

/// The registry as JSON, for `llama stack list-providers`.
pub fn describe() -> Value {
    Value::Array(
        all()
            .iter()
            .map(|s| {
                json!({
                    "api": s.api.as_str(),
                    "provider_type": s.provider_type,
                    "available": s.available(),
                    "note": s.note,
                    "deps": s.deps.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                    "config_fields": s.config_fields,
                })
            })
            .collect(),
    )
}

/// Finds and checks one configured provider: its spec and its defaulted config.
pub fn check(api: Api, index: usize, provider: &Provider) -> Result<(ProviderSpec, JsonObject)> {
    let at = format!("providers.{api}[{index}]");
    let spec = find(api, &provider.provider_type, &at)?;
    let config = spec.check_config(&provider.config, &format!("{at}.config"))?;
    Ok((spec, config))
}

/// Checks every provider of a run config against its type and fills in config defaults.
pub fn check_run_config(config: &mut crate::config::StackRunConfig) -> Result<()> {
    for (api_name, providers) in &mut config.providers {
        let Some(api) = Api::parse(api_name) else { continue };
        for (i, p) in providers.iter_mut().enumerate() {
            let (_, filled) = check(api, i, p)?;
            p.config = filled;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_types_are_unique_per_api() {
        let specs = all();
        for s in &specs {
            assert_eq!(specs.iter().filter(|o| o.api == s.api && o.provider_type == s.provider_type).count(), 1);
        }
    }

    #[test]
    fn config_checks_name_the_field() {
        let p = Provider { provider_id: "x".into(), provider_type: "remote::ollama".into(), config: JsonObject::new() };
        let (_, cfg) = check(Api::Inference, 0, &p).unwrap();
        assert_eq!(cfg["port"], json!(11434));
        let mut bad = p.clone();
        bad.config.insert("port".into(), json!("many"));
        let e = check(Api::Inference, 2, &bad).err().unwrap().to_string();
        assert!(e.contains("providers.inference[2].config.port"), "{e}");
        let tgi = Provider { provider_id: "t".into(), provider_type: "remote::tgi".into(), config: JsonObject::new() };
        let e = check(Api::Inference, 0, &tgi).err().unwrap().to_string();
        assert!(e.contains("config.url` is required"), "{e}");
        let unknown = Provider { provider_type: "remote::nope".into(), ..p };
        let e = check(Api::Inference, 0, &unknown).err().unwrap().to_string();
        assert!(e.contains("unknown provider type `remote::nope`") && e.contains("remote::ollama"), "{e}");
    }
}

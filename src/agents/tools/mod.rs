//! Built-in tools an agent can call during a turn. The executor asks [`builtin`] for the tool a
//! definition names and runs it through [`Tool`]; memory retrieval and client-side function
//! calls are the executor's own business and have no `Tool` here.
//!
//! Web search (Brave or Bing) and Wolfram Alpha call the real services, whose base URLs come
//! from the agents provider's `tools` config section ([`ToolSettings::from_config`]); the code
//! interpreter runs Python in a bubblewrap sandbox ([`sandbox`]); photogen has no image model
//! behind it and says so.

mod code_interpreter;
mod http;
mod photogen;
mod pyjson;
pub mod sandbox;
mod search;
mod wolfram;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::types::agents::{AgentTool, Attachment, SearchEngineType};
use crate::types::common::{JsonObject, ToolCall, ToolResponse};

pub use code_interpreter::CodeInterpreterTool;
pub use photogen::PhotogenTool;
pub use sandbox::SandboxSettings;
pub use search::{BingSearchTool, BraveSearchTool};
pub use wolfram::WolframAlphaTool;

/// What one tool call needs beyond its arguments.
#[derive(Debug, Clone, Default)]
pub struct ToolContext {
    /// The session's working directory: turn attachments are materialised here and the code
    /// interpreter runs in it.
    pub work_dir: PathBuf,
    /// The request's provider data (API keys passed per request).
    pub request: RequestContext,
}

/// What a tool call produced: the response fed back to the model, and files it made (a plot
/// from the code interpreter) that the turn returns as `output_attachments`.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub response: ToolResponse,
    pub attachments: Vec<Attachment>,
}

impl ToolOutput {
    /// A plain text answer to `call`.
    fn text(call: &ToolCall, content: String) -> Self {
        Self {
            response: ToolResponse {
                call_id: call.call_id.clone(),
                tool_name: call.tool_name.clone(),
                content: content.into(),
            },
            attachments: Vec::new(),
        }
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls the tool by (`brave_search`, `code_interpreter`, ...).
    fn name(&self) -> &str;
    async fn run(&self, call: &ToolCall, ctx: &ToolContext) -> Result<ToolOutput>;
}

pub const DEFAULT_BRAVE_URL: &str = "https://api.search.brave.com/res/v1/web/search";
pub const DEFAULT_BING_URL: &str = "https://api.bing.microsoft.com/v7.0/search";
pub const DEFAULT_WOLFRAM_URL: &str = "https://api.wolframalpha.com/v2/query";
/// How long a search or Wolfram Alpha request may take, connection included.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the built-in tools that come from the agents provider's config rather than
/// from the agent (service base URLs, sandbox limits).
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// Brave's web search endpoint (`tools.brave_url`).
    pub brave_url: String,
    /// Bing's web search endpoint (`tools.bing_url`).
    pub bing_url: String,
    /// Wolfram Alpha's full results endpoint (`tools.wolfram_url`).
    pub wolfram_url: String,
    /// Whole-request timeout of the search and Wolfram calls (`tools.timeout`, seconds).
    pub http_timeout: Duration,
    /// The code interpreter's sandbox (`tools.code_interpreter`).
    pub sandbox: SandboxSettings,
    /// One pooled client shared by every HTTP tool built from these settings.
    http: reqwest::Client,
}

impl Default for ToolSettings {
    fn default() -> Self {
        Self {
            brave_url: DEFAULT_BRAVE_URL.to_owned(),
            bing_url: DEFAULT_BING_URL.to_owned(),
            wolfram_url: DEFAULT_WOLFRAM_URL.to_owned(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            sandbox: SandboxSettings::default(),
            http: reqwest::Client::new(),
        }
    }
}

/// The `tools` section of the agents provider's config, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsConfig {
    brave_url: Option<String>,
    bing_url: Option<String>,
    wolfram_url: Option<String>,
    timeout: Option<f64>,
    code_interpreter: Option<sandbox::SandboxConfig>,
}

impl ToolSettings {
    /// Reads the settings from the agents provider's config (its optional `tools` section),
    /// naming a bad field.
    pub fn from_config(config: &JsonObject) -> Result<Self> {
        let section = match config.get("tools") {
            None | Some(Value::Null) => ToolsConfig::default(),
            Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let at = if path == "." { "tools".to_owned() } else { format!("tools.{path}") };
                Error::config(format!("agents provider config `{at}`: {}", e.into_inner()))
            })?,
        };
        let url = |given: Option<String>, default: &str, field: &str| -> Result<String> {
            let url = given.unwrap_or_else(|| default.to_owned());
            match reqwest::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(url),
                _ => {
                    Err(Error::config(format!("agents provider config `tools.{field}`: `{url}` is not an http(s) URL")))
                }
            }
        };
        let http_timeout = match section.timeout {
            None => DEFAULT_HTTP_TIMEOUT,
            Some(s) => sandbox::positive_seconds(s, "tools.timeout")?,
        };
        let sandbox = SandboxSettings::from_config(section.code_interpreter.unwrap_or_default())?;
        let http = reqwest::Client::builder()
            .connect_timeout(http_timeout.min(Duration::from_secs(10)))
            .timeout(http_timeout)
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client of the built-in tools: {e}")))?;
        Ok(Self {
            brave_url: url(section.brave_url, DEFAULT_BRAVE_URL, "brave_url")?,
            bing_url: url(section.bing_url, DEFAULT_BING_URL, "bing_url")?,
            wolfram_url: url(section.wolfram_url, DEFAULT_WOLFRAM_URL, "wolfram_url")?,
            http_timeout,
            sandbox,
            http,
        })
    }
}

/// The tool a definition names, or `None` for the ones the executor handles itself (`memory`,
/// `function_call`). A definition that cannot work (a missing API key, no sandbox) is an error
/// naming the tool and the field.
pub fn builtin(def: &AgentTool, settings: &ToolSettings) -> Result<Option<Arc<dyn Tool>>> {
    let tool: Arc<dyn Tool> = match def {
        AgentTool::BraveSearch(d) => {
            let key = api_key(&d.api_key, "brave_search", &format!(" (engine `{}`)", d.engine.as_str()))?;
            match d.engine {
                SearchEngineType::Brave => Arc::new(BraveSearchTool::new(key, settings)),
                SearchEngineType::Bing => Arc::new(BingSearchTool::new(key, settings)),
            }
        }
        AgentTool::WolframAlpha(d) => {
            Arc::new(WolframAlphaTool::new(api_key(&d.api_key, "wolfram_alpha", "")?, settings))
        }
        AgentTool::Photogen(_) => Arc::new(PhotogenTool),
        AgentTool::CodeInterpreter(_) => Arc::new(CodeInterpreterTool::new(&settings.sandbox)?),
        AgentTool::FunctionCall(_) | AgentTool::Memory(_) => return Ok(None),
    };
    Ok(Some(tool))
}

/// The definition's API key, or an error naming the tool and the field.
fn api_key(key: &str, tool: &str, detail: &str) -> Result<String> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "tool `{tool}`{detail}: `api_key` is empty; the tool definition needs the service's API key"
        )));
    }
    Ok(key.to_owned())
}

/// A string argument of a tool call, or an error naming the tool and the argument.
fn string_arg<'a>(call: &'a ToolCall, tool: &str, name: &str) -> Result<&'a str> {
    match call.arguments.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::invalid(format!("tool `{tool}`: argument `{name}` must be a string, got {other}"))),
        None => Err(Error::invalid(format!("tool `{tool}`: the call has no `{name}` argument"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(v: Value) -> JsonObject {
        match v {
            Value::Object(m) => m,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn settings_default_to_the_real_services() {
        let s = ToolSettings::from_config(&JsonObject::new()).unwrap();
        assert_eq!(s.brave_url, DEFAULT_BRAVE_URL);
        assert_eq!(s.bing_url, DEFAULT_BING_URL);
        assert_eq!(s.wolfram_url, DEFAULT_WOLFRAM_URL);
        assert_eq!(s.http_timeout, DEFAULT_HTTP_TIMEOUT);
        let s =
            ToolSettings::from_config(&config(json!({"tools": {"brave_url": "http://127.0.0.1:9/s", "timeout": 2.5}})))
                .unwrap();
        assert_eq!(s.brave_url, "http://127.0.0.1:9/s");
        assert_eq!(s.http_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (cfg, field) in [
            (json!({"tools": {"brave_ur": "x"}}), "tools"),
            (json!({"tools": {"bing_url": "ftp://x"}}), "tools.bing_url"),
            (json!({"tools": {"timeout": -1}}), "tools.timeout"),
            (json!({"tools": {"code_interpreter": {"timeout": "soon"}}}), "tools.code_interpreter.timeout"),
            (json!({"tools": {"code_interpreter": {"memory_mb": 0}}}), "tools.code_interpreter.memory_mb"),
            (json!({"tools": 3}), "tools"),
        ] {
            let err = ToolSettings::from_config(&config(cfg.clone())).unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}")), "{cfg}: {err}");
        }
    }

    #[test]
    fn missing_api_keys_name_tool_and_field() {
        let s = ToolSettings::default();
        for (def, tool) in [
            (json!({"type": "brave_search", "api_key": "", "engine": "bing"}), "brave_search"),
            (json!({"type": "brave_search", "api_key": "  "}), "brave_search"),
            (json!({"type": "wolfram_alpha", "api_key": ""}), "wolfram_alpha"),
        ] {
            let def: AgentTool = serde_json::from_value(def).unwrap();
            let err = builtin(&def, &s).err().unwrap().to_string();
            assert!(err.contains(&format!("`{tool}`")) && err.contains("`api_key`"), "{err}");
        }
        let def: AgentTool = serde_json::from_value(json!({"type": "brave_search", "api_key": "k"})).unwrap();
        assert_eq!(builtin(&def, &s).unwrap().unwrap().name(), "brave_search");
        let def: AgentTool = serde_json::from_value(json!({"type": "memory"})).unwrap();
        assert!(builtin(&def, &s).unwrap().is_none());
    }
}

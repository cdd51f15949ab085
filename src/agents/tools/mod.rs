//! Built-in tools an agent can call during a turn. The executor asks [`builtin`] for the tool a
//! definition names and runs it through [`Tool`]; memory retrieval and client-side function
//! calls are the executor's own business and have no `Tool` here.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::providers::RequestContext;
use crate::types::agents::{AgentTool, Attachment};
use crate::types::common::{JsonObject, ToolCall, ToolResponse};

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

#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls the tool by (`brave_search`, `code_interpreter`, ...).
    fn name(&self) -> &str;
    async fn run(&self, call: &ToolCall, ctx: &ToolContext) -> Result<ToolOutput>;
}

/// Settings of the built-in tools that come from the agents provider's config rather than
/// from the agent (service base URLs, sandbox limits).
#[derive(Debug, Clone, Default)]
pub struct ToolSettings {}

impl ToolSettings {
    /// Reads the settings from the agents provider's config, naming a bad field.
    pub fn from_config(_config: &JsonObject) -> Result<Self> {
        Ok(Self {})
    }
}

/// The tool a definition names, or `None` for the ones the executor handles itself (`memory`,
/// `function_call`). A definition that cannot work (a missing API key) is an error naming the
/// tool and the field.
pub fn builtin(_def: &AgentTool, _settings: &ToolSettings) -> Result<Option<Arc<dyn Tool>>> {
    Ok(None)
}

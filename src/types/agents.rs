//! `llama_stack.apis.agents`: agent configs and their tools, turns, steps, sessions, the
//! turn-response stream, and the REST execution config a tool may carry.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::common::{
    CompletionMessage, InterleavedTextMedia, JsonObject, SamplingParams, Timestamp, ToolCall, ToolChoice,
    ToolParamDefinition, ToolPromptFormat, ToolResponse, TurnInputMessage, Url,
};
use super::inference::{ToolCallDelta, null_as_default};
use super::macros::{literal, string_enum, tagged_union};
use super::memory::DocumentContent;
use super::memory_banks::{GraphTag, KeyvalueTag, KeywordTag, MemoryBankDef, VectorTag};
use super::safety::SafetyViolation;

// ---------------------------------------------------------------------------------------------
// REST execution config (upstream keeps it in `apis.common.deployment_types`).

string_enum!(RestAPIMethod { Get = "GET", Post = "POST", Put = "PUT", Delete = "DELETE" });

/// Where a tool runs when it is executed remotely rather than in process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestAPIExecutionConfig {
    pub url: Url,
    pub method: RestAPIMethod,
    #[serde(default)]
    pub params: Option<JsonObject>,
    #[serde(default)]
    pub headers: Option<JsonObject>,
    #[serde(default)]
    pub body: Option<JsonObject>,
}

// ---------------------------------------------------------------------------------------------
// Tool definitions.

literal!(SearchToolTag = "brave_search");
literal!(WolframAlphaToolTag = "wolfram_alpha");
literal!(PhotogenToolTag = "photogen");
literal!(CodeInterpreterToolTag = "code_interpreter");
literal!(FunctionCallToolTag = "function_call");
literal!(MemoryToolTag = "memory");

string_enum!(SearchEngineType { Bing = "bing", Brave = "brave" });

#[allow(clippy::derivable_impls, reason = "string_enum! cannot mark a default variant")]
impl Default for SearchEngineType {
    fn default() -> Self {
        Self::Brave
    }
}

/// Web search. The tag stays `brave_search` whatever the engine, because that is the tool name
/// the model emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: SearchToolTag,
    pub api_key: String,
    #[serde(default)]
    pub engine: SearchEngineType,
    #[serde(default)]
    pub remote_execution: Option<RestAPIExecutionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WolframAlphaToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: WolframAlphaToolTag,
    pub api_key: String,
    #[serde(default)]
    pub remote_execution: Option<RestAPIExecutionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotogenToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: PhotogenToolTag,
    #[serde(default)]
    pub remote_execution: Option<RestAPIExecutionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeInterpreterToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: CodeInterpreterToolTag,
    #[serde(default = "yes")]
    pub enable_inline_code_execution: bool,
    #[serde(default)]
    pub remote_execution: Option<RestAPIExecutionConfig>,
}

/// A tool the client implements; the agent hands the call back to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: FunctionCallToolTag,
    pub function_name: String,
    pub description: String,
    pub parameters: IndexMap<String, ToolParamDefinition>,
    #[serde(default)]
    pub remote_execution: Option<RestAPIExecutionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentVectorMemoryBankConfig {
    pub bank_id: String,
    #[serde(rename = "type", default)]
    pub kind: VectorTag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentKeyValueMemoryBankConfig {
    pub bank_id: String,
    #[serde(rename = "type", default)]
    pub kind: KeyvalueTag,
    /// The keys retrieval should look at.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentKeywordMemoryBankConfig {
    pub bank_id: String,
    #[serde(rename = "type", default)]
    pub kind: KeywordTag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentGraphMemoryBankConfig {
    pub bank_id: String,
    #[serde(rename = "type", default)]
    pub kind: GraphTag,
    /// The entities retrieval should look at.
    pub entities: Vec<String>,
}

tagged_union!(
    /// One bank a memory tool reads from, discriminated on `type`.
    MemoryBankConfig, tag = "type", {
        Vector(AgentVectorMemoryBankConfig) = "vector",
        Keyvalue(AgentKeyValueMemoryBankConfig) = "keyvalue",
        Keyword(AgentKeywordMemoryBankConfig) = "keyword",
        Graph(AgentGraphMemoryBankConfig) = "graph",
    }
);

impl MemoryBankConfig {
    pub fn bank_id(&self) -> &str {
        match self {
            Self::Vector(c) => &c.bank_id,
            Self::Keyvalue(c) => &c.bank_id,
            Self::Keyword(c) => &c.bank_id,
            Self::Graph(c) => &c.bank_id,
        }
    }
}

literal!(DefaultQueryGeneratorTag = "default");
literal!(LlmQueryGeneratorTag = "llm");
literal!(CustomQueryGeneratorTag = "custom");

string_enum!(MemoryQueryGenerator { Default = "default", Llm = "llm", Custom = "custom" });

/// Builds the retrieval query by joining the turn's messages with `sep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultMemoryQueryGeneratorConfig {
    #[serde(rename = "type", default)]
    pub kind: DefaultQueryGeneratorTag,
    #[serde(default = "space")]
    pub sep: String,
}

impl Default for DefaultMemoryQueryGeneratorConfig {
    fn default() -> Self {
        Self { kind: DefaultQueryGeneratorTag::Value, sep: space() }
    }
}

/// Asks `model` to write the retrieval query from `template`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmMemoryQueryGeneratorConfig {
    #[serde(rename = "type", default)]
    pub kind: LlmQueryGeneratorTag,
    pub model: String,
    pub template: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomMemoryQueryGeneratorConfig {
    #[serde(rename = "type", default)]
    pub kind: CustomQueryGeneratorTag,
}

tagged_union!(
    /// How a memory tool turns the conversation into a retrieval query, discriminated on `type`.
    MemoryQueryGeneratorConfig, tag = "type", {
        Default(DefaultMemoryQueryGeneratorConfig) = "default",
        Llm(LlmMemoryQueryGeneratorConfig) = "llm",
        Custom(CustomMemoryQueryGeneratorConfig) = "custom",
    }
);

impl Default for MemoryQueryGeneratorConfig {
    fn default() -> Self {
        Self::Default(DefaultMemoryQueryGeneratorConfig::default())
    }
}

/// Retrieval-augmented generation over memory banks. With no bank configs the agent retrieves
/// from the session's own bank, filled from the turn's attachments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryToolDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(rename = "type", default)]
    pub kind: MemoryToolTag,
    #[serde(default)]
    pub memory_bank_configs: Vec<MemoryBankConfig>,
    #[serde(default)]
    pub query_generator_config: MemoryQueryGeneratorConfig,
    #[serde(default = "default_max_tokens_in_context")]
    pub max_tokens_in_context: i64,
    #[serde(default = "default_max_chunks")]
    pub max_chunks: i64,
}

tagged_union!(
    /// A tool an agent may use (`AgentToolDefinition` upstream), discriminated on `type`.
    AgentTool, tag = "type", {
        BraveSearch(SearchToolDefinition) = "brave_search",
        WolframAlpha(WolframAlphaToolDefinition) = "wolfram_alpha",
        Photogen(PhotogenToolDefinition) = "photogen",
        CodeInterpreter(CodeInterpreterToolDefinition) = "code_interpreter",
        FunctionCall(FunctionCallToolDefinition) = "function_call",
        Memory(MemoryToolDefinition) = "memory",
    }
);

/// Upstream's name for the tool union.
pub type AgentToolDefinition = AgentTool;

impl AgentTool {
    pub fn input_shields(&self) -> &[String] {
        match self {
            Self::BraveSearch(t) => &t.input_shields,
            Self::WolframAlpha(t) => &t.input_shields,
            Self::Photogen(t) => &t.input_shields,
            Self::CodeInterpreter(t) => &t.input_shields,
            Self::FunctionCall(t) => &t.input_shields,
            Self::Memory(t) => &t.input_shields,
        }
    }

    pub fn output_shields(&self) -> &[String] {
        match self {
            Self::BraveSearch(t) => &t.output_shields,
            Self::WolframAlpha(t) => &t.output_shields,
            Self::Photogen(t) => &t.output_shields,
            Self::CodeInterpreter(t) => &t.output_shields,
            Self::FunctionCall(t) => &t.output_shields,
            Self::Memory(t) => &t.output_shields,
        }
    }

    /// The remote execution config, for the tools that can have one (all but memory).
    pub fn remote_execution(&self) -> Option<&RestAPIExecutionConfig> {
        match self {
            Self::BraveSearch(t) => t.remote_execution.as_ref(),
            Self::WolframAlpha(t) => t.remote_execution.as_ref(),
            Self::Photogen(t) => t.remote_execution.as_ref(),
            Self::CodeInterpreter(t) => t.remote_execution.as_ref(),
            Self::FunctionCall(t) => t.remote_execution.as_ref(),
            Self::Memory(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agent config.

/// How an agent is set up. Everything but `model`, `instructions` and
/// `enable_session_persistence` has upstream's default when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    #[serde(default = "default_sampling")]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_shields: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<AgentTool>,
    #[serde(default = "default_tool_choice")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default = "default_tool_prompt_format")]
    pub tool_prompt_format: Option<ToolPromptFormat>,
    #[serde(default = "default_max_infer_iters")]
    pub max_infer_iters: i64,
    pub model: String,
    pub instructions: String,
    pub enable_session_persistence: bool,
}

impl AgentConfig {
    /// The sampling parameters, with upstream's defaults when the config says null.
    pub fn sampling(&self) -> SamplingParams {
        self.sampling_params.clone().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Attachments, steps, turns, sessions.

/// What an attachment holds: inline text or media, or a URL to fetch.
pub type AttachmentContent = DocumentContent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub content: AttachmentContent,
    pub mime_type: String,
}

string_enum!(StepType {
    Inference = "inference",
    ToolExecution = "tool_execution",
    ShieldCall = "shield_call",
    MemoryRetrieval = "memory_retrieval",
});

literal!(InferenceStepTag = "inference");
literal!(ToolExecutionStepTag = "tool_execution");
literal!(ShieldCallStepTag = "shield_call");
literal!(MemoryRetrievalStepTag = "memory_retrieval");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceStep {
    pub turn_id: String,
    pub step_id: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub step_type: InferenceStepTag,
    pub model_response: CompletionMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolExecutionStep {
    pub turn_id: String,
    pub step_id: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub step_type: ToolExecutionStepTag,
    pub tool_calls: Vec<ToolCall>,
    pub tool_responses: Vec<ToolResponse>,
}

/// A shield run. `violation` is null when the shield let the messages through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShieldCallStep {
    pub turn_id: String,
    pub step_id: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub step_type: ShieldCallStepTag,
    #[serde(default)]
    pub violation: Option<SafetyViolation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRetrievalStep {
    pub turn_id: String,
    pub step_id: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub step_type: MemoryRetrievalStepTag,
    pub memory_bank_ids: Vec<String>,
    pub inserted_context: InterleavedTextMedia,
}

tagged_union!(
    /// One step of a turn, discriminated on `step_type`.
    Step, tag = "step_type", {
        Inference(InferenceStep) = "inference",
        ToolExecution(ToolExecutionStep) = "tool_execution",
        ShieldCall(ShieldCallStep) = "shield_call",
        MemoryRetrieval(MemoryRetrievalStep) = "memory_retrieval",
    }
);

impl Step {
    pub fn step_type(&self) -> StepType {
        match self {
            Self::Inference(_) => StepType::Inference,
            Self::ToolExecution(_) => StepType::ToolExecution,
            Self::ShieldCall(_) => StepType::ShieldCall,
            Self::MemoryRetrieval(_) => StepType::MemoryRetrieval,
        }
    }

    pub fn step_id(&self) -> &str {
        match self {
            Self::Inference(s) => &s.step_id,
            Self::ToolExecution(s) => &s.step_id,
            Self::ShieldCall(s) => &s.step_id,
            Self::MemoryRetrieval(s) => &s.step_id,
        }
    }

    pub fn turn_id(&self) -> &str {
        match self {
            Self::Inference(s) => &s.turn_id,
            Self::ToolExecution(s) => &s.turn_id,
            Self::ShieldCall(s) => &s.turn_id,
            Self::MemoryRetrieval(s) => &s.turn_id,
        }
    }
}

/// One user turn of a session: its input, the steps taken and the final answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub turn_id: String,
    pub session_id: String,
    pub input_messages: Vec<TurnInputMessage>,
    pub steps: Vec<Step>,
    pub output_message: CompletionMessage,
    #[serde(default)]
    pub output_attachments: Vec<Attachment>,
    pub started_at: Timestamp,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
}

/// A conversation with an agent. `memory_bank` is the session's own bank, created when the first
/// attachments arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub session_name: String,
    pub turns: Vec<Turn>,
    pub started_at: Timestamp,
    #[serde(default)]
    pub memory_bank: Option<MemoryBankDef>,
}

// ---------------------------------------------------------------------------------------------
// The turn-response stream.

string_enum!(AgentTurnResponseEventType {
    StepStart = "step_start",
    StepComplete = "step_complete",
    StepProgress = "step_progress",
    TurnStart = "turn_start",
    TurnComplete = "turn_complete",
});

literal!(StepStartTag = "step_start");
literal!(StepProgressTag = "step_progress");
literal!(StepCompleteTag = "step_complete");
literal!(TurnStartTag = "turn_start");
literal!(TurnCompleteTag = "turn_complete");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseStepStartPayload {
    #[serde(default)]
    pub event_type: StepStartTag,
    pub step_type: StepType,
    pub step_id: String,
    #[serde(default = "empty_object")]
    pub metadata: Option<JsonObject>,
}

/// A piece of a step in progress: model text, a tool call being streamed, or tool output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseStepProgressPayload {
    #[serde(default)]
    pub event_type: StepProgressTag,
    pub step_type: StepType,
    pub step_id: String,
    #[serde(default)]
    pub model_response_text_delta: Option<String>,
    #[serde(default)]
    pub tool_call_delta: Option<ToolCallDelta>,
    #[serde(default)]
    pub tool_response_text_delta: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseStepCompletePayload {
    #[serde(default)]
    pub event_type: StepCompleteTag,
    pub step_type: StepType,
    pub step_details: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseTurnStartPayload {
    #[serde(default)]
    pub event_type: TurnStartTag,
    pub turn_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseTurnCompletePayload {
    #[serde(default)]
    pub event_type: TurnCompleteTag,
    pub turn: Turn,
}

tagged_union!(
    /// What a stream event carries, discriminated on `event_type`.
    AgentTurnResponseEventPayload, tag = "event_type", {
        StepStart(AgentTurnResponseStepStartPayload) = "step_start",
        StepProgress(AgentTurnResponseStepProgressPayload) = "step_progress",
        StepComplete(AgentTurnResponseStepCompletePayload) = "step_complete",
        TurnStart(AgentTurnResponseTurnStartPayload) = "turn_start",
        TurnComplete(AgentTurnResponseTurnCompletePayload) = "turn_complete",
    }
);

impl AgentTurnResponseEventPayload {
    pub fn event_type(&self) -> AgentTurnResponseEventType {
        match self {
            Self::StepStart(_) => AgentTurnResponseEventType::StepStart,
            Self::StepProgress(_) => AgentTurnResponseEventType::StepProgress,
            Self::StepComplete(_) => AgentTurnResponseEventType::StepComplete,
            Self::TurnStart(_) => AgentTurnResponseEventType::TurnStart,
            Self::TurnComplete(_) => AgentTurnResponseEventType::TurnComplete,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseEvent {
    pub payload: AgentTurnResponseEventPayload,
}

/// One item of a streamed turn (and, with the turn-complete payload, the non-streamed answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTurnResponseStreamChunk {
    pub event: AgentTurnResponseEvent,
}

impl From<AgentTurnResponseEventPayload> for AgentTurnResponseStreamChunk {
    fn from(payload: AgentTurnResponseEventPayload) -> Self {
        Self { event: AgentTurnResponseEvent { payload } }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses and request bodies.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCreateResponse {
    pub agent_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSessionCreateResponse {
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStepResponse {
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateAgentRequest {
    pub agent_config: AgentConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateAgentSessionRequest {
    pub agent_id: String,
    pub session_name: String,
}

/// The body of a turn. Upstream's request model also lists the per-turn overridable config
/// fields, but neither its route nor its agent reads them, and its client sends them all with
/// their defaults; they are ignored like any other unknown key (docs/architecture.md, Agents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateAgentTurnRequest {
    pub agent_id: String,
    pub session_id: String,
    pub messages: Vec<TurnInputMessage>,
    #[serde(default)]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(default = "default_false")]
    pub stream: Option<bool>,
}

impl CreateAgentTurnRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteAgentsRequest {
    pub agent_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteAgentsSessionRequest {
    pub agent_id: String,
    pub session_id: String,
}

/// The body of a session lookup. The contract puts `agent_id` and `session_id` in the query;
/// upstream's server wants them in the body, so both places are read and they are kept here
/// when present (and left out when not, to match the contract's form).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetAgentsSessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub turn_ids: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Serde defaults.

fn yes() -> bool {
    true
}

fn space() -> String {
    " ".to_owned()
}

fn default_max_tokens_in_context() -> i64 {
    4096
}

fn default_max_chunks() -> i64 {
    10
}

fn default_max_infer_iters() -> i64 {
    10
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_sampling() -> Option<SamplingParams> {
    Some(SamplingParams::default())
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_tool_choice() -> Option<ToolChoice> {
    Some(ToolChoice::Auto)
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_tool_prompt_format() -> Option<ToolPromptFormat> {
    Some(ToolPromptFormat::Json)
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_false() -> Option<bool> {
    Some(false)
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn empty_object() -> Option<JsonObject> {
    Some(JsonObject::new())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Value {
        let parsed: T = serde_json::from_value(v.clone()).unwrap();
        serde_json::to_value(&parsed).unwrap()
    }

    fn remote() -> Value {
        json!({
            "url": {"uri": "https://tools.example/run"},
            "method": "POST",
            "params": {"q": 1},
            "headers": {"X-Key": "k"},
            "body": null,
        })
    }

    /// An agent config as pydantic would dump it, with one tool of each kind.
    fn full_config() -> Value {
        json!({
            "sampling_params": {
                "strategy": "top_p", "temperature": 0.7, "top_p": 0.9, "top_k": 0,
                "max_tokens": 512, "repetition_penalty": 1.0
            },
            "input_shields": ["llama_guard"],
            "output_shields": [],
            "tools": [
                {"input_shields": [], "output_shields": [], "type": "brave_search",
                 "api_key": "b", "engine": "bing", "remote_execution": remote()},
                {"input_shields": [], "output_shields": [], "type": "wolfram_alpha",
                 "api_key": "w", "remote_execution": null},
                {"input_shields": [], "output_shields": [], "type": "photogen", "remote_execution": null},
                {"input_shields": ["a"], "output_shields": ["b"], "type": "code_interpreter",
                 "enable_inline_code_execution": false, "remote_execution": null},
                {"input_shields": [], "output_shields": [], "type": "function_call",
                 "function_name": "get_boiling_point", "description": "Boiling point of a liquid",
                 "parameters": {
                     "liquid_name": {"param_type": "string", "description": "liquid", "required": true, "default": null},
                     "celsius": {"param_type": "bool", "description": null, "required": false, "default": true}
                 },
                 "remote_execution": null},
                {"input_shields": [], "output_shields": [], "type": "memory",
                 "memory_bank_configs": [
                     {"bank_id": "v", "type": "vector"},
                     {"bank_id": "kv", "type": "keyvalue", "keys": ["k1"]},
                     {"bank_id": "kw", "type": "keyword"},
                     {"bank_id": "g", "type": "graph", "entities": ["e1", "e2"]}
                 ],
                 "query_generator_config": {"type": "llm", "model": "Llama3.2-3B-Instruct", "template": "{messages}"},
                 "max_tokens_in_context": 2048, "max_chunks": 5}
            ],
            "tool_choice": "required",
            "tool_prompt_format": "python_list",
            "max_infer_iters": 4,
            "model": "Llama3.1-8B-Instruct",
            "instructions": "You are a helpful assistant",
            "enable_session_persistence": true
        })
    }

    #[test]
    fn agent_config_with_every_tool_round_trips() {
        let v = full_config();
        assert_eq!(round_trip::<AgentConfig>(&v), v);
        let cfg: AgentConfig = serde_json::from_value(v).unwrap();
        let tags: Vec<_> = cfg.tools.iter().map(AgentTool::tag).collect();
        assert_eq!(tags, AgentTool::TAGS);
        let AgentTool::Memory(mem) = &cfg.tools[5] else { panic!("expected the memory tool") };
        let banks: Vec<_> = mem.memory_bank_configs.iter().map(|b| (b.tag(), b.bank_id())).collect();
        assert_eq!(banks, [("vector", "v"), ("keyvalue", "kv"), ("keyword", "kw"), ("graph", "g")]);
        assert_eq!(cfg.tools[0].remote_execution().map(|r| r.method), Some(RestAPIMethod::Post));
        assert_eq!(cfg.tools[3].input_shields(), ["a"]);
    }

    #[test]
    fn agent_config_defaults_match_upstream() {
        let cfg: AgentConfig = serde_json::from_value(json!({
            "model": "m", "instructions": "i", "enable_session_persistence": false,
            "tools": [{"type": "memory"}, {"type": "code_interpreter"}, {"type": "brave_search", "api_key": "k"}],
            "tool_choices": "auto"
        }))
        .unwrap();
        assert_eq!(cfg.sampling_params, Some(SamplingParams::default()));
        assert!(cfg.input_shields.is_empty() && cfg.output_shields.is_empty());
        assert_eq!(cfg.tool_choice, Some(ToolChoice::Auto));
        assert_eq!(cfg.tool_prompt_format, Some(ToolPromptFormat::Json));
        assert_eq!(cfg.max_infer_iters, 10);
        let AgentTool::Memory(mem) = &cfg.tools[0] else { panic!("expected the memory tool") };
        assert!(mem.memory_bank_configs.is_empty());
        assert_eq!(mem.query_generator_config, MemoryQueryGeneratorConfig::default());
        assert_eq!((mem.max_tokens_in_context, mem.max_chunks), (4096, 10));
        let AgentTool::CodeInterpreter(ci) = &cfg.tools[1] else { panic!("expected the code interpreter") };
        assert!(ci.enable_inline_code_execution);
        let AgentTool::BraveSearch(s) = &cfg.tools[2] else { panic!("expected search") };
        assert_eq!(s.engine, SearchEngineType::Brave);
        let dumped = serde_json::to_value(&cfg.tools[0]).unwrap();
        assert_eq!(dumped["query_generator_config"], json!({"type": "default", "sep": " "}));

        // Shield lists given as null mean "none", and the required fields are named when missing.
        let cfg: AgentConfig = serde_json::from_value(json!({
            "model": "m", "instructions": "i", "enable_session_persistence": true, "input_shields": null, "tools": null
        }))
        .unwrap();
        assert!(cfg.input_shields.is_empty() && cfg.tools.is_empty());
        let err = serde_json::from_value::<AgentConfig>(json!({"model": "m", "instructions": "i"})).unwrap_err();
        assert!(err.to_string().contains("enable_session_persistence"), "{err}");
    }

    #[test]
    fn unions_name_their_valid_tags() {
        let err = serde_json::from_value::<Step>(json!({"turn_id": "t", "step_id": "s"})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("missing field `step_type`"), "{msg}");
        for tag in Step::TAGS {
            assert!(msg.contains(tag), "{msg}");
        }
        let err = serde_json::from_value::<Step>(json!({"turn_id": "t", "step_id": "s", "step_type": "thinking"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown step_type `thinking` (expected one of: inference, tool_execution, shield_call, memory_retrieval)"
        );
        let err = serde_json::from_value::<AgentTool>(json!({"type": "browser"})).unwrap_err();
        assert!(
            err.to_string().contains("brave_search, wolfram_alpha, photogen, code_interpreter, function_call, memory")
        );
        let err = serde_json::from_value::<MemoryBankConfig>(json!({"type": "graph", "bank_id": "g"})).unwrap_err();
        assert!(err.to_string().contains("entities"), "{err}");
    }

    fn steps() -> Vec<Value> {
        vec![
            json!({"turn_id": "t1", "step_id": "s1", "started_at": "2024-10-10T12:00:00Z",
                   "completed_at": "2024-10-10T12:00:01.500000Z", "step_type": "inference",
                   "model_response": {"role": "assistant", "content": "", "stop_reason": "end_of_message",
                       "tool_calls": [{"call_id": "c1", "tool_name": "brave_search", "arguments": {"query": "x"}}]}}),
            json!({"turn_id": "t1", "step_id": "s2", "started_at": null, "completed_at": null,
                   "step_type": "tool_execution",
                   "tool_calls": [{"call_id": "c1", "tool_name": "brave_search", "arguments": {"query": "x"}}],
                   "tool_responses": [{"call_id": "c1", "tool_name": "brave_search", "content": "{\"r\": 1}"}]}),
            json!({"turn_id": "t1", "step_id": "s3", "started_at": null, "completed_at": null,
                   "step_type": "shield_call", "violation": null}),
            json!({"turn_id": "t1", "step_id": "s4", "started_at": null, "completed_at": null,
                   "step_type": "memory_retrieval", "memory_bank_ids": ["b"],
                   "inserted_context": ["Here are the retrieved documents", "chunk"]}),
        ]
    }

    fn turn() -> Value {
        json!({
            "turn_id": "t1", "session_id": "sess",
            "input_messages": [{"role": "user", "content": "hi", "context": null}],
            "steps": steps(),
            "output_message": {"role": "assistant", "content": "hello", "stop_reason": "end_of_turn", "tool_calls": []},
            "output_attachments": [{"content": {"uri": "file:///tmp/plot.png"}, "mime_type": "image/png"}],
            "started_at": "2024-10-10T12:00:00Z", "completed_at": "2024-10-10T12:00:02Z"
        })
    }

    #[test]
    fn stream_chunks_of_every_payload_round_trip() {
        let delta = json!({"content": {"call_id": "c1", "tool_name": "get_weather", "arguments": {"city": "Paris"}},
                           "parse_status": "success"});
        let payloads = [
            json!({"event_type": "step_start", "step_type": "inference", "step_id": "s1", "metadata": {}}),
            json!({"event_type": "step_progress", "step_type": "inference", "step_id": "s1",
                   "model_response_text_delta": "Hel", "tool_call_delta": null, "tool_response_text_delta": null}),
            json!({"event_type": "step_progress", "step_type": "inference", "step_id": "s1",
                   "model_response_text_delta": null, "tool_call_delta": delta, "tool_response_text_delta": null}),
            json!({"event_type": "step_complete", "step_type": "shield_call", "step_details": steps()[2]}),
            json!({"event_type": "turn_start", "turn_id": "t1"}),
            json!({"event_type": "turn_complete", "turn": turn()}),
        ];
        let mut seen = Vec::new();
        for payload in payloads {
            let chunk = json!({"event": {"payload": payload}});
            assert_eq!(round_trip::<AgentTurnResponseStreamChunk>(&chunk), chunk);
            let parsed: AgentTurnResponseStreamChunk = serde_json::from_value(chunk).unwrap();
            seen.push(parsed.event.payload.event_type());
        }
        seen.dedup();
        assert_eq!(seen.len(), AgentTurnResponseEventPayload::TAGS.len());

        // The tag defaults nowhere: a payload without `event_type` is refused by name.
        let err = serde_json::from_value::<AgentTurnResponseEvent>(json!({"payload": {"turn_id": "t"}})).unwrap_err();
        assert!(err.to_string().contains("missing field `event_type`"), "{err}");
        let start: AgentTurnResponseStepStartPayload =
            serde_json::from_value(json!({"step_type": "inference", "step_id": "s"})).unwrap();
        assert_eq!(start.metadata, Some(JsonObject::new()));
    }

    #[test]
    fn steps_turns_and_sessions_round_trip() {
        for (step, tag) in steps().iter().zip(Step::TAGS) {
            assert_eq!(round_trip::<Step>(step), *step);
            let parsed: Step = serde_json::from_value(step.clone()).unwrap();
            assert_eq!(parsed.step_type().as_str(), *tag);
            assert_eq!(parsed.turn_id(), "t1");
        }
        let session = json!({
            "session_id": "sess", "session_name": "demo", "turns": [turn()],
            "started_at": "2024-10-10T11:59:00Z",
            "memory_bank": {"type": "vector", "identifier": "bank", "provider_id": "faiss",
                            "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 512,
                            "overlap_size_in_tokens": null}
        });
        assert_eq!(round_trip::<Session>(&session), session);
        let response = json!({"step": steps()[3]});
        assert_eq!(round_trip::<AgentStepResponse>(&response), response);
    }

    #[test]
    fn turn_request_defaults_and_messages() {
        let req: CreateAgentTurnRequest = serde_json::from_value(json!({
            "agent_id": "a", "session_id": "s",
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "ipython", "call_id": "c", "tool_name": "get_weather", "content": "sunny"}],
            "attachments": [{"content": "https://example.com/data.csv", "mime_type": "text/csv"}],
            "instructions": "ignored"
        }))
        .unwrap();
        assert!(!req.is_stream());
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.attachments.as_ref().map(Vec::len), Some(1));
        let err = serde_json::from_value::<CreateAgentTurnRequest>(json!({
            "agent_id": "a", "session_id": "s", "messages": [{"role": "system", "content": "no"}]
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown role `system`"), "{err}");

        let get: GetAgentsSessionRequest = serde_json::from_value(json!({"turn_ids": ["t1"]})).unwrap();
        assert_eq!(serde_json::to_value(&get).unwrap(), json!({"turn_ids": ["t1"]}));
    }
}

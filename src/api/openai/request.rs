//! `OpenAI` request bodies and their translation into the Llama Stack requests the providers take.
//! A parameter we cannot honour is refused with a 400 naming it, rather than dropped silently.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::common::{
    AssistantRole, CompletionMessage, ImageMedia, ImageSource, InterleavedTextMedia, IpythonRole, JsonObject,
    MediaItem, Message, SamplingParams, SamplingStrategy, StopReason, SystemMessage, SystemRole, ToolCall, ToolChoice,
    ToolDefinition, ToolName, ToolParamDefinition, ToolPromptFormat, ToolResponseMessage, Url, UserMessage, UserRole,
};
use crate::types::inference::{ChatCompletionRequest, CompletionRequest, LogProbConfig};

/// The most stop sequences a request may give.
const MAX_STOPS: usize = 4;

/// Sampling and output parameters both endpoints take.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Common {
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub n: Option<i64>,
    #[serde(default)]
    pub stop: Option<Value>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub logit_bias: Option<Value>,
    /// Not `OpenAI`'s own: vLLM's, and what this stack's `remote::openai` provider sends.
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
}

/// `POST /v1/chat/completions`. Fields not listed (`user`, `seed`, `stream_options`,
/// `parallel_tool_calls`, ...) do not change the answer's content and are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<i64>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<MessageToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MessageToolCall {
    pub id: String,
    pub function: CalledFunction,
}

#[derive(Debug, Deserialize)]
pub(super) struct CalledFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct Tool {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: FunctionDef,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub(super) struct CompletionBody {
    pub model: String,
    pub prompt: Value,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(default)]
    pub best_of: Option<i64>,
    #[serde(flatten)]
    pub common: Common,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Deserialize)]
pub(super) struct EmbeddingsBody {
    pub model: String,
    pub input: Value,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<Value>,
}

/// The temperature `OpenAI` samples at when a request names none.
const OPENAI_DEFAULT_TEMPERATURE: f64 = 1.0;

/// A 400 naming the body field `param` (dotted, with `[i]` for list items).
pub(super) fn bad(param: &str, msg: impl Into<String>) -> Error {
    let mut loc = vec!["body".to_owned()];
    for part in param.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                loc.push(name.to_owned());
                loc.extend(rest.split('[').map(|i| i.trim_end_matches(']').to_owned()));
            }
            None => loc.push(part.to_owned()),
        }
    }
    Error::Validation(vec![crate::error::FieldIssue { loc, msg: msg.into(), kind: "invalid_value".into() }])
}

fn unsupported(param: &str, what: &str) -> Error {
    bad(param, format!("{what} is not supported by this server"))
}

impl Common {
    /// `stop`: one string or a list of up to four, none empty (`OpenAI`'s rules).
    pub(super) fn stop_sequences(&self) -> Result<Vec<String>> {
        let items = match &self.stop {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => vec![Value::String(s.clone())],
            Some(Value::Array(a)) => a.clone(),
            Some(other) => return Err(bad("stop", format!("must be a string or a list of strings, got {other}"))),
        };
        if items.len() > MAX_STOPS {
            return Err(bad("stop", format!("at most {MAX_STOPS} sequences, got {}", items.len())));
        }
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s),
                other => Err(bad("stop", format!("each sequence must be a non-empty string, got {other}"))),
            })
            .collect()
    }

    /// Refuses what no provider here can honour.
    fn check(&self) -> Result<()> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(unsupported("n", "more than one choice"));
        }
        self.stop_sequences()?;
        if self.presence_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("presence_penalty", "a non-zero `presence_penalty`"));
        }
        if self.frequency_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("frequency_penalty", "a non-zero `frequency_penalty`"));
        }
        if self.logit_bias.as_ref().is_some_and(|b| b.as_object().is_none_or(|m| !m.is_empty())) {
            return Err(unsupported("logit_bias", "`logit_bias`"));
        }
        Ok(())
    }

    /// The sampling parameters: `top_k` picks the top-k strategy, `top_p` the top-p one, and
    /// temperature alone keeps the default strategy, which providers sample by temperature. An
    /// absent temperature is `OpenAI`'s default of 1; 0 means greedy decoding.
    fn sampling(&self, max_tokens: Option<i64>) -> Result<SamplingParams> {
        let mut p = SamplingParams::default();
        let t = self.temperature.unwrap_or(OPENAI_DEFAULT_TEMPERATURE);
        if !(0.0..=2.0).contains(&t) {
            return Err(bad("temperature", format!("must be between 0 and 2, got {t}")));
        }
        p.temperature = Some(t);
        if let Some(v) = self.top_p {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad("top_p", format!("must be between 0 and 1, got {v}")));
            }
            p.strategy = SamplingStrategy::TopP;
            p.top_p = Some(v);
        }
        if let Some(k) = self.top_k.filter(|k| *k > 0) {
            p.strategy = SamplingStrategy::TopK;
            p.top_k = Some(k);
        }
        if let Some(n) = max_tokens {
            if n < 1 {
                return Err(bad("max_tokens", format!("must be at least 1, got {n}")));
            }
            p.max_tokens = Some(n);
        }
        if let Some(r) = self.repetition_penalty {
            p.repetition_penalty = Some(r);
        }
        Ok(p)
    }
}

impl ChatRequest {
    pub(super) fn into_request(self) -> Result<ChatCompletionRequest> {
        self.common.check()?;
        let logprobs = match (self.logprobs, self.top_logprobs) {
            (Some(true), top) => Some(logprob_config("top_logprobs", top.unwrap_or(0), MAX_TOP_LOGPROBS)?),
            (_, Some(n)) if n > 0 => return Err(bad("top_logprobs", "needs `logprobs: true`")),
            _ => None,
        };
        if let Some(format) = &self.response_format {
            let kind = format.get("type").and_then(Value::as_str);
            if !format.is_null() && kind != Some("text") {
                return Err(unsupported("response_format", "a `response_format` other than text"));
            }
        }
        let sampling = self.common.sampling(self.max_completion_tokens.or(self.common.max_tokens))?;
        let messages = messages(self.messages)?;
        let tools = tools(self.tools.unwrap_or_default())?;
        let (tools, tool_choice) = choose(tools, self.tool_choice.as_ref())?;
        Ok(ChatCompletionRequest {
            model: self.model,
            messages,
            sampling_params: Some(sampling),
            tools,
            tool_choice: Some(tool_choice),
            tool_prompt_format: Some(ToolPromptFormat::Json),
            stream: Some(self.common.stream.unwrap_or(false)),
            logprobs,
        })
    }
}

/// `OpenAI`'s limits on the candidates per token: 20 for chat, 5 for completions.
const MAX_TOP_LOGPROBS: i64 = 20;
const MAX_COMPLETION_LOGPROBS: i64 = 5;

/// The scores asked for: `n` candidates besides the chosen token, which is always given.
fn logprob_config(param: &str, n: i64, max: i64) -> Result<LogProbConfig> {
    if !(0..=max).contains(&n) {
        return Err(bad(param, format!("must be between 0 and {max}, got {n}")));
    }
    Ok(LogProbConfig { top_k: Some(n.max(1)) })
}

impl CompletionBody {
    pub(super) fn into_request(self) -> Result<CompletionRequest> {
        self.common.check()?;
        if self.echo == Some(true) {
            return Err(unsupported("echo", "`echo`"));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(unsupported("suffix", "`suffix`"));
        }
        let logprobs = match &self.logprobs {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                Some(logprob_config("logprobs", n.as_i64().unwrap_or(0), MAX_COMPLETION_LOGPROBS)?)
            }
            Some(other) => return Err(bad("logprobs", format!("must be an integer, got {other}"))),
        };
        if self.best_of.is_some_and(|b| b != 1) {
            return Err(unsupported("best_of", "`best_of` above 1"));
        }
        let prompt = match self.prompt {
            Value::String(s) => s,
            Value::Array(items) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().unwrap_or_default().to_owned()
            }
            Value::Array(items) if items.iter().all(Value::is_string) => {
                return Err(bad("prompt", "one prompt per request: send a string or a list of one string"));
            }
            _ => return Err(bad("prompt", "must be a string (token ids are not accepted)")),
        };
        Ok(CompletionRequest {
            model: self.model,
            content: InterleavedTextMedia::Text(prompt),
            sampling_params: Some(self.common.sampling(self.common.max_tokens)?),
            stream: Some(self.common.stream.unwrap_or(false)),
            logprobs,
        })
    }
}

impl EmbeddingsBody {
    /// The texts to embed, and whether the vectors go back as base64.
    pub(super) fn into_parts(self) -> Result<(String, Vec<InterleavedTextMedia>, bool)> {
        if self.dimensions.as_ref().is_some_and(|d| !d.is_null()) {
            return Err(unsupported("dimensions", "choosing `dimensions`"));
        }
        let base64 = match self.encoding_format.as_deref() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => return Err(bad("encoding_format", format!("must be `float` or `base64`, got `{other}`"))),
        };
        let texts = match self.input {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad(&format!("input[{i}]"), "must be a string (token ids are not accepted)")),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(bad("input", "must be a string or a list of strings")),
        };
        Ok((self.model, texts.into_iter().map(InterleavedTextMedia::Text).collect(), base64))
    }
}

/// Message content as text, or as interleaved text and images where images are allowed.
fn content(value: Option<Value>, at: &str, images: bool) -> Result<InterleavedTextMedia> {
    let parts = match value {
        None | Some(Value::Null) => return Ok(InterleavedTextMedia::Text(String::new())),
        Some(Value::String(s)) => return Ok(InterleavedTextMedia::Text(s)),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(bad(at, "must be a string or a list of content parts")),
    };
    let mut items = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let here = format!("{at}[{i}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.get("text").and_then(Value::as_str) {
                Some(t) => items.push(MediaItem::Text(t.to_owned())),
                None => return Err(bad(&format!("{here}.text"), "a text part needs `text`")),
            },
            Some("image_url") if images => {
                let url = part.get("image_url").and_then(|u| u.get("url").or(Some(u))).and_then(Value::as_str);
                match url {
                    Some(u) => {
                        items.push(MediaItem::Image(ImageMedia { image: ImageSource::Url(Url { uri: u.to_owned() }) }));
                    }
                    None => return Err(bad(&format!("{here}.image_url"), "an image part needs `image_url.url`")),
                }
            }
            Some("image_url") => return Err(bad(&here, "only user messages may hold images")),
            Some(other) => {
                return Err(bad(&format!("{here}.type"), format!("content parts of type `{other}` are not supported")));
            }
            None => return Err(bad(&format!("{here}.type"), "Field required")),
        }
    }
    if items.iter().all(|i| matches!(i, MediaItem::Text(_))) {
        let text: Vec<String> =
            items.into_iter().filter_map(|i| if let MediaItem::Text(t) = i { Some(t) } else { None }).collect();
        return Ok(InterleavedTextMedia::Text(text.join("\n")));
    }
    Ok(InterleavedTextMedia::List(items))
}

fn messages(input: Vec<ChatMessage>) -> Result<Vec<Message>> {
    // Tool results name their call only by id; the tool's name comes from the call.
    let mut call_names: Vec<(String, String)> = Vec::new();
    let mut out = Vec::with_capacity(input.len());
    for (i, m) in input.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        let content_at = format!("{at}.content");
        let message = match m.role.as_str() {
            "system" | "developer" => Message::System(SystemMessage {
                role: SystemRole::Value,
                content: content(m.content, &content_at, false)?,
            }),
            "user" => Message::User(UserMessage {
                role: UserRole::Value,
                content: content(m.content, &content_at, true)?,
                context: None,
            }),
            "assistant" => {
                let mut tool_calls = Vec::new();
                for (j, call) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    let args_at = format!("{at}.tool_calls[{j}].function.arguments");
                    let arguments = arguments(&call.function.arguments, &args_at)?;
                    call_names.push((call.id.clone(), call.function.name.clone()));
                    tool_calls.push(ToolCall {
                        call_id: call.id,
                        tool_name: ToolName::from(call.function.name.as_str()),
                        arguments,
                    });
                }
                let stop_reason = if tool_calls.is_empty() { StopReason::EndOfTurn } else { StopReason::EndOfMessage };
                Message::Assistant(CompletionMessage {
                    role: AssistantRole::Value,
                    content: content(m.content, &content_at, false)?,
                    stop_reason,
                    tool_calls,
                })
            }
            "tool" => {
                let Some(call_id) = m.tool_call_id.filter(|id| !id.is_empty()) else {
                    return Err(bad(
                        &format!("{at}.tool_call_id"),
                        "a tool message needs the id of the call it answers",
                    ));
                };
                let name = call_names.iter().rev().find(|(id, _)| *id == call_id).map(|(_, n)| n.clone()).or(m.name);
                let Some(name) = name else {
                    return Err(bad(
                        &format!("{at}.tool_call_id"),
                        format!("`{call_id}` answers no tool call of an earlier assistant message"),
                    ));
                };
                Message::Ipython(ToolResponseMessage {
                    role: IpythonRole::Value,
                    call_id,
                    tool_name: ToolName::from(name.as_str()),
                    content: content(m.content, &content_at, false)?,
                })
            }
            other => {
                return Err(bad(
                    &format!("{at}.role"),
                    format!("`{other}` is not one of system, developer, user, assistant, tool"),
                ));
            }
        };
        out.push(message);
    }
    Ok(out)
}

/// Call arguments as an object; `OpenAI` sends them as JSON text.
fn arguments(value: &Value, at: &str) -> Result<JsonObject> {
    match value {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(JsonObject::new()),
        Value::String(s) if s.trim().is_empty() => Ok(JsonObject::new()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad(at, "must be a JSON object encoded as a string")),
        },
        _ => Err(bad(at, "must be a JSON object encoded as a string")),
    }
}

/// Function tools as tool definitions. Each top-level property of the parameter schema becomes
/// a parameter with its type, description and default; nested schemas keep only their type.
fn tools(input: Vec<Tool>) -> Result<Vec<ToolDefinition>> {
    input
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("tools[{i}]");
            if t.kind.as_deref().is_some_and(|k| k != "function") {
                return Err(bad(&format!("{at}.type"), "only `function` tools are supported"));
            }
            if t.function.name.trim().is_empty() {
                return Err(bad(&format!("{at}.function.name"), "must not be empty"));
            }
            let parameters = match &t.function.parameters {
                None | Some(Value::Null) => None,
                Some(Value::Object(schema)) => {
                    let params = params(schema);
                    if params.is_empty() { None } else { Some(params) }
                }
                Some(_) => return Err(bad(&format!("{at}.function.parameters"), "must be a JSON schema object")),
            };
            Ok(ToolDefinition {
                tool_name: ToolName::from(t.function.name.as_str()),
                description: t.function.description,
                parameters,
            })
        })
        .collect()
}

fn params(schema: &JsonObject) -> IndexMap<String, ToolParamDefinition> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return IndexMap::new() };
    properties
        .iter()
        .map(|(name, prop)| {
            let def = ToolParamDefinition {
                param_type: schema_type(prop).to_owned(),
                description: prop.get("description").and_then(Value::as_str).map(str::to_owned),
                required: Some(required.contains(&name.as_str())),
                default: prop.get("default").cloned(),
            };
            (name.clone(), def)
        })
        .collect()
}

/// A property's JSON-schema type: the first non-null one of a type list, else what its shape says.
fn schema_type(prop: &Value) -> &str {
    match prop.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string"),
        _ if prop.get("properties").is_some() => "object",
        _ if prop.get("items").is_some() => "array",
        _ => "string",
    }
}

/// Applies `tool_choice`: `none` sends no tools, `required` or a named function makes the model
/// call one (only the named one, when named).
fn choose(tools: Vec<ToolDefinition>, choice: Option<&Value>) -> Result<(Vec<ToolDefinition>, ToolChoice)> {
    match choice {
        None | Some(Value::Null) => Ok((tools, ToolChoice::Auto)),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok((tools, ToolChoice::Auto)),
            "none" => Ok((Vec::new(), ToolChoice::Auto)),
            "required" => Ok((tools, ToolChoice::Required)),
            other => Err(bad("tool_choice", format!("must be none, auto, required or a function, got `{other}`"))),
        },
        Some(v) => {
            let Some(name) = v.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) else {
                return Err(bad(
                    "tool_choice",
                    "a named choice is {\"type\": \"function\", \"function\": {\"name\": ...}}",
                ));
            };
            let chosen: Vec<ToolDefinition> = tools.into_iter().filter(|t| t.tool_name.as_str() == name).collect();
            if chosen.is_empty() {
                return Err(bad("tool_choice", format!("names `{name}`, which is not among `tools`")));
            }
            Ok((chosen, ToolChoice::Required))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    fn chat(v: Value) -> Result<ChatCompletionRequest> {
        serde_json::from_value::<ChatRequest>(v).unwrap().into_request()
    }

    fn param_of(e: &Error) -> Vec<String> {
        match e {
            Error::Validation(issues) => issues[0].loc.clone(),
            other => vec![other.to_string()],
        }
    }

    #[test]
    fn a_chat_request_with_tools_and_tool_results() {
        let r = chat(json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string", "description": "city"},
                                                 "days": {"type": ["integer", "null"], "default": 1}},
                "required": ["city"]}}}],
            "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 20, "stream": true, "user": "ignored",
        }))
        .unwrap();
        assert!(r.is_stream());
        let s = r.sampling();
        assert_eq!(
            (s.strategy, s.temperature, s.top_p, s.max_tokens),
            (SamplingStrategy::TopP, Some(0.5), Some(0.9), Some(20))
        );
        assert!(
            matches!(&r.messages[0], Message::System(m) if m.content == InterleavedTextMedia::Text("be brief".into()))
        );
        assert!(
            matches!(&r.messages[1], Message::User(m) if matches!(&m.content, InterleavedTextMedia::List(items) if items.len() == 2))
        );
        let Message::Assistant(a) = &r.messages[2] else { unreachable!() };
        assert_eq!((a.tool_calls[0].call_id.as_str(), &a.tool_calls[0].arguments["city"]), ("c1", &json!("Rome")));
        assert_eq!(a.stop_reason, StopReason::EndOfMessage);
        let Message::Ipython(t) = &r.messages[3] else { unreachable!() };
        assert_eq!((t.call_id.as_str(), t.tool_name.as_str()), ("c1", "get_weather"));
        let params = r.tools[0].parameters.as_ref().unwrap();
        assert_eq!(params["city"].required, Some(true));
        assert_eq!((params["days"].param_type.as_str(), params["days"].required), ("integer", Some(false)));
        assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
    }

    #[test]
    fn tool_choice_narrows_or_drops_tools() {
        let tool = |name: &str| json!({"type": "function", "function": {"name": name}});
        let base = |choice: Value| {
            chat(json!({"model": "m", "messages": [], "tools": [tool("a"), tool("b")], "tool_choice": choice}))
        };
        assert!(base(json!("none")).unwrap().tools.is_empty());
        let r = base(json!({"type": "function", "function": {"name": "b"}})).unwrap();
        assert_eq!((r.tools.len(), r.tool_choice), (1, Some(ToolChoice::Required)));
        assert_eq!(base(json!("required")).unwrap().tool_choice, Some(ToolChoice::Required));
        let e = base(json!({"type": "function", "function": {"name": "zz"}})).unwrap_err();
        assert_eq!(param_of(&e), ["body", "tool_choice"]);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let msgs = json!([{"role": "user", "content": "x"}]);
        for (field, value, loc) in [
            ("n", json!(2), vec!["body", "n"]),
            ("stop", json!(["\n", ""]), vec!["body", "stop"]),
            ("stop", json!(5), vec!["body", "stop"]),
            ("stop", json!(["a", "b", "c", "d", "e"]), vec!["body", "stop"]),
            ("frequency_penalty", json!(0.5), vec!["body", "frequency_penalty"]),
            ("top_logprobs", json!(21), vec!["body", "top_logprobs"]),
            ("response_format", json!({"type": "json_object"}), vec!["body", "response_format"]),
            ("temperature", json!(3), vec!["body", "temperature"]),
            ("max_tokens", json!(0), vec!["body", "max_tokens"]),
        ] {
            let mut body = json!({"model": "m", "messages": msgs});
            body[field] = value;
            assert_eq!(param_of(&chat(body).unwrap_err()), loc, "{field}");
        }
        for (body, loc) in [
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
                vec!["body", "messages", "0", "role"],
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
                vec!["body", "messages", "0", "tool_call_id"],
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
                {"id": "1", "function": {"name": "f", "arguments": "[1]"}}]}]}),
                vec!["body", "messages", "0", "tool_calls", "0", "function", "arguments"],
            ),
            (
                json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
                vec!["body", "messages", "0", "content", "0"],
            ),
        ] {
            assert_eq!(param_of(&chat(body).unwrap_err()), loc);
        }
        // Null or neutral values of refused parameters are fine.
        let ok = json!({"model": "m", "messages": msgs, "stop": null, "n": 1, "presence_penalty": 0, "logit_bias": {}});
        assert!(chat(ok).is_ok());
    }

    #[test]
    fn completions_and_embeddings_bodies() {
        let c: CompletionBody =
            serde_json::from_value(json!({"model": "m", "prompt": ["once"], "max_tokens": 5, "top_k": 3})).unwrap();
        let r = c.into_request().unwrap();
        assert_eq!(r.content, InterleavedTextMedia::Text("once".into()));
        assert_eq!(
            (r.sampling().strategy, r.sampling().top_k, r.sampling().max_tokens),
            (SamplingStrategy::TopK, Some(3), Some(5))
        );
        assert_eq!(r.sampling().temperature, Some(1.0));
        let c: CompletionBody = serde_json::from_value(json!({"model": "m", "prompt": [1, 2]})).unwrap();
        assert_eq!(param_of(&c.into_request().unwrap_err()), ["body", "prompt"]);
        let c: CompletionBody = serde_json::from_value(json!({"model": "m", "prompt": "x", "echo": true})).unwrap();
        assert_eq!(param_of(&c.into_request().unwrap_err()), ["body", "echo"]);

        let e: EmbeddingsBody =
            serde_json::from_value(json!({"model": "m", "input": "a", "encoding_format": "base64"})).unwrap();
        let (model, texts, b64) = e.into_parts().unwrap();
        assert_eq!((model.as_str(), texts.len(), b64), ("m", 1, true));
        let e: EmbeddingsBody = serde_json::from_value(json!({"model": "m", "input": ["a", 3]})).unwrap();
        assert_eq!(param_of(&e.into_parts().unwrap_err()), ["body", "input", "1"]);
    }
}

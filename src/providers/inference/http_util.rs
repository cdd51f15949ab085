//! What the HTTP-backed inference providers share: cutting a streamed body into lines, error text
//! from a failed request, and the function-tool schema (`OpenAI`'s format, which Ollama takes too).

use std::collections::VecDeque;
use std::error::Error as _;

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::types::common::{BuiltinTool, JsonObject, ToolCall, ToolDefinition, ToolName};

/// Longest line kept while waiting for its newline. A streamed line holds a token or a tool call,
/// so a line this long means the other end is not speaking the expected format.
pub(super) const MAX_LINE: usize = 4 * 1024 * 1024;

/// Cuts a byte stream into lines. Blank lines are skipped and a trailing `\r` is dropped.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds one chunk; returns the lines it completed. `Err` carries the length of a partial
    /// line that grew past the limit.
    pub(super) fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<Vec<u8>>, usize> {
        let mut lines = Vec::new();
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&chunk[..i]);
            chunk = &chunk[i + 1..];
            if let Some(line) = non_blank(std::mem::take(&mut self.partial)) {
                lines.push(line);
            }
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_LINE {
            return Err(self.partial.len());
        }
        Ok(lines)
    }

    /// The last line, when the body ended without a newline after it.
    pub(super) fn finish(&mut self) -> Option<Vec<u8>> {
        non_blank(std::mem::take(&mut self.partial))
    }
}

/// Why a streamed body stopped yielding lines.
pub(super) enum LineError {
    /// A line grew past `MAX_LINE` (its length so far) without a newline.
    TooLong(usize),
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

impl LineError {
    /// The message for a line that grew too long; transport errors go to the provider's mapper.
    pub(super) fn describe(len: usize) -> String {
        format!("a line of over {len} bytes with no newline")
    }
}

/// The lines of a streamed HTTP body, for the NDJSON and SSE readers alike. The stream owns the
/// body, so dropping it closes the connection; it ends after its first error.
pub(super) fn body_lines<S>(body: S) -> BoxStream<'static, Result<Vec<u8>, LineError>>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        splitter: LineSplitter,
        ready: VecDeque<Vec<u8>>,
        ended: bool,
    }
    let state = State { body: body.boxed(), splitter: LineSplitter::default(), ready: VecDeque::new(), ended: false };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                return Some((Ok(line), st));
            }
            if st.ended {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => match st.splitter.push(&bytes) {
                    Ok(lines) => st.ready.extend(lines),
                    Err(len) => {
                        st.ended = true;
                        return Some((Err(LineError::TooLong(len)), st));
                    }
                },
                Some(Err(e)) => {
                    st.ended = true;
                    return Some((Err(LineError::Transport(e)), st));
                }
                None => {
                    st.ended = true;
                    st.ready.extend(st.splitter.finish());
                }
            }
        }
    })
    .boxed()
}

/// Passes items through up to and including the first one `last` picks, then ends.
pub(super) fn until<T: Send + 'static>(
    items: BoxStream<'static, T>,
    last: impl Fn(&T) -> bool + Send + 'static,
) -> BoxStream<'static, T> {
    items
        .scan(false, move |done, item| {
            if *done {
                return futures::future::ready(None);
            }
            *done = last(&item);
            futures::future::ready(Some(item))
        })
        .boxed()
}

fn non_blank(mut line: Vec<u8>) -> Option<Vec<u8>> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.iter().all(u8::is_ascii_whitespace) { None } else { Some(line) }
}

/// The start of a body, for error messages.
pub(super) fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// The error and its causes on one line: reqwest puts the useful part ("Connection refused")
/// in the source chain.
pub(super) fn causes(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// A function call as `OpenAI`-style answers carry it (Ollama's too).
#[derive(Debug, Deserialize)]
pub(super) struct WireToolCall {
    /// Newer Ollama servers name each call; older ones do not.
    #[serde(default)]
    pub id: Option<String>,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireFunction {
    /// A call without a name is refused by [`function_call`], with a message saying so.
    #[serde(default)]
    pub name: String,
    /// JSON text by `OpenAI`'s spec; Ollama and some servers send the object itself.
    #[serde(default)]
    pub arguments: Value,
}

impl WireToolCall {
    pub(super) fn parse(&self) -> Result<ToolCall, String> {
        function_call(self.id.clone(), &self.function.name, &self.function.arguments)
    }
}

/// A function call an `OpenAI`-style answer holds (Ollama's too), as a `ToolCall`. `arguments`
/// is JSON text by `OpenAI`'s spec; Ollama and some servers send the object itself.
pub(super) fn function_call(id: Option<String>, name: &str, arguments: &Value) -> Result<ToolCall, String> {
    if name.is_empty() {
        return Err("a tool call without a function name".into());
    }
    let arguments: JsonObject = match arguments {
        Value::Object(m) => m.clone(),
        Value::Null => JsonObject::new(),
        Value::String(s) if s.trim().is_empty() => JsonObject::new(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(format!("the arguments of tool call `{name}` are not a JSON object: {s}")),
        },
        other => return Err(format!("the arguments of tool call `{name}` are not a JSON object: {other}")),
    };
    let call_id = id.filter(|id| !id.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Ok(ToolCall { call_id, tool_name: ToolName::from(name), arguments })
}

/// A tool definition as a function tool, with a JSON schema for its parameters.
pub(super) fn function_tool(t: &ToolDefinition) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    match &t.parameters {
        Some(params) if !params.is_empty() => {
            for (name, p) in params {
                let mut schema = Map::new();
                schema.insert("type".into(), json!(json_type(&p.param_type)));
                if let Some(d) = &p.description {
                    schema.insert("description".into(), json!(d));
                }
                if let Some(d) = &p.default {
                    schema.insert("default".into(), d.clone());
                }
                properties.insert(name.clone(), Value::Object(schema));
                if p.required == Some(true) {
                    required.push(json!(name));
                }
            }
        }
        // Built-in tools are declared without parameters; give the model the one argument
        // each takes in Llama's own tool-call format.
        _ => {
            let arg = match t.tool_name {
                ToolName::Builtin(BuiltinTool::CodeInterpreter) => Some(("code", "Python code to run")),
                ToolName::Builtin(_) => Some(("query", "what to look up or create")),
                ToolName::Custom(_) => None,
            };
            if let Some((name, description)) = arg {
                properties.insert(name.into(), json!({"type": "string", "description": description}));
                required.push(json!(name));
            }
        }
    }
    let description = t.description.clone().unwrap_or_else(|| builtin_description(&t.tool_name).to_owned());
    json!({
        "type": "function",
        "function": {
            "name": t.tool_name.as_str(),
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    })
}

fn builtin_description(name: &ToolName) -> &'static str {
    match name {
        ToolName::Builtin(BuiltinTool::BraveSearch) => "Search the web for current information",
        ToolName::Builtin(BuiltinTool::WolframAlpha) => "Ask Wolfram Alpha a mathematical or scientific question",
        ToolName::Builtin(BuiltinTool::Photogen) => "Generate an image from a description",
        ToolName::Builtin(BuiltinTool::CodeInterpreter) => "Run Python code and return what it prints",
        ToolName::Custom(_) => "",
    }
}

/// JSON-schema type names for the Python-style names Llama tool definitions often use.
fn json_type(param_type: &str) -> &str {
    match param_type {
        "str" => "string",
        "int" => "integer",
        "float" => "number",
        "bool" => "boolean",
        "list" => "array",
        "dict" => "object",
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::ToolParamDefinition;

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c).unwrap());
        }
        out.extend(s.finish());
        out.into_iter().map(|l| String::from_utf8_lossy(&l).into_owned()).collect()
    }

    #[test]
    fn whole_lines_in_one_chunk() {
        assert_eq!(split_all(&[b"{\"a\":1}\n{\"b\":2}\n"]), ["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn lines_split_across_chunks_at_every_offset() {
        let body = b"{\"response\":\"h\xc3\xa9\"}\r\n\n{\"done\":true}\n";
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(split_all(&[a, b]), ["{\"response\":\"h\u{e9}\"}", "{\"done\":true}"], "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(split_all(&bytes).len(), 2);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(split_all(&[b"{\"a\":1}\n{\"b\"", b":2}"]), ["{\"a\":1}", "{\"b\":2}"]);
        assert!(split_all(&[b"\n \n\r\n", b"  "]).is_empty());
    }

    #[test]
    fn runaway_line_is_refused() {
        let mut s = LineSplitter::default();
        let big = vec![b'x'; MAX_LINE];
        assert!(s.push(&big).is_ok());
        assert_eq!(s.push(b"yy"), Err(MAX_LINE + 2));
    }

    #[test]
    fn previews_are_cut() {
        assert_eq!(preview(b"short"), "short");
        let long = "x".repeat(300);
        assert_eq!(preview(long.as_bytes()).chars().count(), 201);
    }

    #[test]
    fn tools_become_function_schemas() {
        let mut params = indexmap::IndexMap::new();
        params.insert(
            "city".to_owned(),
            ToolParamDefinition {
                param_type: "str".into(),
                description: Some("city name".into()),
                required: Some(true),
                default: None,
            },
        );
        params.insert(
            "days".to_owned(),
            ToolParamDefinition {
                param_type: "int".into(),
                description: None,
                required: Some(false),
                default: Some(json!(1)),
            },
        );
        let t = ToolDefinition {
            tool_name: ToolName::from("get_weather"),
            description: Some("Weather".into()),
            parameters: Some(params),
        };
        assert_eq!(
            function_tool(&t),
            json!({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "city name"}, "days": {"type": "integer", "default": 1}},
                "required": ["city"],
            }}})
        );
        let search = ToolDefinition { tool_name: ToolName::from("brave_search"), description: None, parameters: None };
        let v = function_tool(&search);
        assert_eq!(v["function"]["parameters"]["required"], json!(["query"]));
        assert_eq!(v["function"]["description"], "Search the web for current information");
    }

    #[test]
    fn function_call_arguments_must_be_objects() {
        assert!(
            function_call(None, "f", &json!("{\"a\": 1}"))
                .is_ok_and(|c| c.arguments["a"] == 1 && c.call_id.len() == 36)
        );
        assert!(function_call(Some("x".into()), "f", &json!({"a": 1})).is_ok_and(|c| c.call_id == "x"));
        assert!(function_call(None, "f", &json!("")).is_ok_and(|c| c.arguments.is_empty()));
        assert!(function_call(None, "f", &json!("[1]")).is_err_and(|e| e.contains("`f`")));
        assert!(function_call(None, "", &json!({})).is_err());
    }
}

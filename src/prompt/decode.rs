//! Reading the assistant's raw output back into a message: stop tokens, and at most one tool
//! call in any of the forms Llama 3.1/3.2 write (builtin `name.call(query="...")`, JSON object,
//! `<function=...>` tag, python list, or bare code after `<|python_tag|>`).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::pylist;
use super::render::{EOM, EOT, PYTHON_TAG};
use crate::types::common::{
    AssistantRole, BuiltinTool, CompletionMessage, InterleavedTextMedia, StopReason, ToolCall, ToolName,
};

const ASSISTANT_HEADER: &str = "<|start_header_id|>assistant<|end_header_id|>\n\n";

/// The `<function=NAME>{...}` form; the arguments end at the first `}` on the same line.
static FUNCTION_TAG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"<function=(?P<function_name>[^}]+)>(?P<args>\{.*?\})").ok());
/// `tool.call(query="...")`, the builtin tools' form.
static BUILTIN_CALL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"\b(?P<tool_name>\w+)\.call\(query="(?P<query>[^"]*)"\)"#).ok());

/// What a custom-call form yielded: a call (an argument is `None` when it has no JSON form), or
/// a form that claimed to be a call but whose name or arguments cannot make one (the message
/// then keeps its text and has no call).
enum Custom {
    Call(String, Vec<(String, Option<Value>)>),
    Unusable,
}

/// Parses model output into an assistant message. A trailing `<|eot_id|>`/`<|eom_id|>` decides
/// the stop reason over `stop_reason`. When a tool call is found the content becomes empty.
pub fn decode_assistant_message(text: &str, stop_reason: StopReason) -> CompletionMessage {
    let mut stop_reason = stop_reason;
    let mut content = text.trim_matches(' ');
    content = content.strip_prefix(ASSISTANT_HEADER).unwrap_or(content);
    let ipython = content.starts_with(PYTHON_TAG);
    if ipython {
        content = &content[PYTHON_TAG.len()..];
    }
    if let Some(c) = content.strip_suffix(EOT) {
        content = c;
        stop_reason = StopReason::EndOfTurn;
    } else if let Some(c) = content.strip_suffix(EOM) {
        content = c;
        stop_reason = StopReason::EndOfMessage;
    }

    let call = match custom_call(content) {
        Some(Custom::Call(name, args)) => custom_to_call(name, args),
        Some(Custom::Unusable) => None,
        None => match builtin_call(content) {
            Some((name, query)) => {
                let mut args = Map::new();
                args.insert("query".into(), Value::String(query));
                Some((ToolName::from(name.as_str()), args))
            }
            None if ipython => {
                let mut args = Map::new();
                args.insert("code".into(), Value::String(content.to_owned()));
                Some((ToolName::Builtin(BuiltinTool::CodeInterpreter), args))
            }
            None => None,
        },
    };

    let (content, tool_calls) = match call {
        Some((tool_name, arguments)) => {
            (String::new(), vec![ToolCall { call_id: uuid::Uuid::new_v4().to_string(), tool_name, arguments }])
        }
        None => (content.to_owned(), Vec::new()),
    };
    CompletionMessage {
        role: AssistantRole::default(),
        content: InterleavedTextMedia::Text(content),
        stop_reason,
        tool_calls,
    }
}

/// A custom call naming a builtin tool is turned into that tool, with its first argument as
/// the query (models sometimes call builtins in the custom format). `None` when an argument the
/// call needs has no JSON form.
fn custom_to_call(name: String, args: Vec<(String, Option<Value>)>) -> Option<(ToolName, Map<String, Value>)> {
    if let Some(b) = BuiltinTool::parse(&name) {
        let mut query = Map::new();
        if let Some((_, first)) = args.into_iter().next() {
            query.insert("query".into(), first?);
        }
        return Some((ToolName::Builtin(b), query));
    }
    let map = args.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect::<Option<Map<_, _>>>()?;
    Some((ToolName::Custom(name), map))
}

fn entries(map: Map<String, Value>) -> Vec<(String, Option<Value>)> {
    map.into_iter().map(|(k, v)| (k, Some(v))).collect()
}

/// The custom forms, tried in order: function tag, JSON object, python list. `None` when the
/// text is in none of them (or its function tag's arguments are not JSON).
fn custom_call(text: &str) -> Option<Custom> {
    let tag = FUNCTION_TAG.as_ref().and_then(|re| re.captures(text));
    if let Some(caps) = tag {
        let name = caps.name("function_name").map_or("", |m| m.as_str());
        let args = caps.name("args").map_or("", |m| m.as_str()).replace('\'', "\"");
        return match serde_json::from_str::<Map<String, Value>>(&args) {
            Ok(map) => Some(Custom::Call(name.to_owned(), entries(map))),
            Err(_) => None,
        };
    }
    if let Ok(obj) = serde_json::from_str::<Map<String, Value>>(text) {
        let is_call = obj.get("type").is_some_and(|t| t == "function") || obj.contains_key("name");
        if !is_call {
            return None;
        }
        return Some(match (obj.get("name"), obj.get("parameters")) {
            (Some(Value::String(name)), Some(Value::Object(args))) => Custom::Call(name.clone(), entries(args.clone())),
            _ => Custom::Unusable,
        });
    }
    let (name, args) = pylist::parse_first_call(text)?;
    Some(Custom::Call(name, args))
}

fn builtin_call(text: &str) -> Option<(String, String)> {
    let caps = BUILTIN_CALL.as_ref()?.captures(text)?;
    Some((caps.name("tool_name")?.as_str().to_owned(), caps.name("query")?.as_str().to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call_of(text: &str) -> Option<(String, Value)> {
        let m = decode_assistant_message(text, StopReason::OutOfTokens);
        m.tool_calls.first().map(|c| (c.tool_name.to_string(), Value::Object(c.arguments.clone())))
    }

    #[test]
    fn plain_text_keeps_content_and_stop_token() {
        let m = decode_assistant_message("  Hello there.<|eot_id|>", StopReason::OutOfTokens);
        assert_eq!(m.content, InterleavedTextMedia::Text("Hello there.".into()));
        assert_eq!(m.stop_reason, StopReason::EndOfTurn);
        assert!(m.tool_calls.is_empty());
    }

    #[test]
    fn builtin_and_code_calls() {
        assert_eq!(
            call_of("<|python_tag|>brave_search.call(query=\"weather in SF\")<|eom_id|>"),
            Some(("brave_search".into(), json!({"query": "weather in SF"})))
        );
        assert_eq!(
            call_of("<|python_tag|>print(2 + 2)"),
            Some(("code_interpreter".into(), json!({"code": "print(2 + 2)"})))
        );
        let m = decode_assistant_message("<|python_tag|>x = 1<|eom_id|>", StopReason::EndOfTurn);
        assert_eq!(m.stop_reason, StopReason::EndOfMessage);
        assert_eq!(m.content, InterleavedTextMedia::Text(String::new()));
    }

    #[test]
    fn custom_forms() {
        assert_eq!(
            call_of(r#"{"type": "function", "name": "get", "parameters": {"city": "Paris"}}"#),
            Some(("get".into(), json!({"city": "Paris"})))
        );
        assert_eq!(
            call_of(r"<function=get>{'city': 'Paris'}</function>"),
            Some(("get".into(), json!({"city": "Paris"})))
        );
        assert_eq!(call_of(r#"[get(city="Paris"), other(x=1)]"#), Some(("get".into(), json!({"city": "Paris"}))));
        assert_eq!(
            call_of(r#"<function=brave_search>{"q": "news"}</function>"#),
            Some(("brave_search".into(), json!({"query": "news"})))
        );
    }

    #[test]
    fn unusable_json_call_keeps_the_text() {
        let text = r#"{"name": "get", "parameters": null}"#;
        let m = decode_assistant_message(text, StopReason::EndOfTurn);
        assert!(m.tool_calls.is_empty());
        assert_eq!(m.content, InterleavedTextMedia::Text(text.into()));
        assert_eq!(call_of(r#"{"answer": 42}"#), None);
    }
}

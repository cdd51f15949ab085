//! The Llama 3 dialog encoding: headers, contents, tool calls and terminators, as a list of
//! pieces that either join into the prompt text or tokenize piece by piece exactly as the
//! reference `ChatFormat` does.

use serde_json::{Map, Value};

use super::pyfmt::{JsonStyle, json_dumps, py_str};
use crate::types::common::{
    BuiltinTool, CompletionMessage, InterleavedTextMedia, MediaItem, Message, StopReason, ToolCall, ToolName,
    ToolPromptFormat, UserMessage,
};

pub const BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
pub const START_HEADER: &str = "<|start_header_id|>";
pub const END_HEADER: &str = "<|end_header_id|>";
pub const EOM: &str = "<|eom_id|>";
pub const EOT: &str = "<|eot_id|>";
pub const PYTHON_TAG: &str = "<|python_tag|>";
pub const IMAGE: &str = "<|image|>";

/// One unit of the encoded dialog: a special token, or text that is tokenized on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Special(&'static str),
    Text(String),
}

/// The pieces of a whole dialog, ending with an open assistant header.
pub fn dialog_pieces(messages: &[Message], fmt: ToolPromptFormat) -> Vec<Piece> {
    let mut out = vec![Piece::Special(BEGIN_OF_TEXT)];
    for m in messages {
        message_pieces(&mut out, m, fmt);
    }
    header(&mut out, "assistant");
    out
}

/// Joins pieces into the text a tokenizer's decode would give back.
pub fn join(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Special(t) => s.push_str(t),
            Piece::Text(t) => s.push_str(t),
        }
    }
    s
}

fn header(out: &mut Vec<Piece>, role: &str) {
    out.push(Piece::Special(START_HEADER));
    out.push(Piece::Text(role.to_owned()));
    out.push(Piece::Special(END_HEADER));
    out.push(Piece::Text("\n\n".to_owned()));
}

/// A bare image (neither text nor a list) adds nothing, as in the reference encoder.
fn content_pieces(out: &mut Vec<Piece>, content: &InterleavedTextMedia) {
    match content {
        InterleavedTextMedia::Text(t) => out.push(Piece::Text(t.clone())),
        InterleavedTextMedia::List(items) => {
            for item in items {
                out.push(match item {
                    MediaItem::Text(t) => Piece::Text(t.clone()),
                    MediaItem::Image(_) => Piece::Special(IMAGE),
                });
            }
        }
        InterleavedTextMedia::Image(_) => {}
    }
}

fn message_pieces(out: &mut Vec<Piece>, m: &Message, fmt: ToolPromptFormat) {
    header(out, m.role().as_str());
    if matches!(m, Message::Assistant(a) if !a.tool_calls.is_empty()) {
        out.push(Piece::Special(PYTHON_TAG));
    }
    content_pieces(out, m.content());
    if let Message::User(UserMessage { context: Some(ctx), .. }) = m {
        out.push(Piece::Text("\n\n".to_owned()));
        content_pieces(out, ctx);
    }
    let mut eom = false;
    if let Message::Assistant(CompletionMessage { tool_calls, stop_reason, .. }) = m {
        for call in tool_calls {
            tool_call_pieces(out, call, fmt);
        }
        eom = *stop_reason == StopReason::EndOfMessage;
    }
    out.push(Piece::Special(if eom { EOM } else { EOT }));
}

/// `str()` of an argument, or nothing when it is absent.
fn arg_text(args: &Map<String, Value>, key: &str) -> String {
    args.get(key).map(py_str).unwrap_or_default()
}

fn tool_call_pieces(out: &mut Vec<Piece>, call: &ToolCall, fmt: ToolPromptFormat) {
    if call.tool_name == ToolName::Builtin(BuiltinTool::CodeInterpreter) {
        // The code is written raw; a non-text value is encoded the way content would be.
        match call.arguments.get("code") {
            Some(Value::String(code)) => out.push(Piece::Text(code.clone())),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(|s| Piece::Text(s.to_owned())));
            }
            _ => {}
        }
        return;
    }
    out.push(Piece::Text(encode_tool_call(call, fmt)));
}

/// The text of one assistant tool call as the model writes it.
pub fn encode_tool_call(call: &ToolCall, fmt: ToolPromptFormat) -> String {
    match &call.tool_name {
        ToolName::Builtin(b @ (BuiltinTool::BraveSearch | BuiltinTool::WolframAlpha | BuiltinTool::Photogen)) => {
            format!("{}.call(query=\"{}\")", b.as_str(), arg_text(&call.arguments, "query"))
        }
        ToolName::Builtin(BuiltinTool::CodeInterpreter) => arg_text(&call.arguments, "code"),
        ToolName::Custom(name) => match fmt {
            ToolPromptFormat::Json => {
                let mut obj = Map::new();
                obj.insert("type".into(), Value::from("function"));
                obj.insert("name".into(), Value::from(name.as_str()));
                obj.insert("parameters".into(), Value::Object(call.arguments.clone()));
                json_dumps(&Value::Object(obj), JsonStyle::default())
            }
            ToolPromptFormat::FunctionTag => {
                let args = json_dumps(&Value::Object(call.arguments.clone()), JsonStyle::default());
                format!("<function={name}>{args}</function>")
            }
            ToolPromptFormat::PythonList => {
                let args: Vec<String> =
                    call.arguments.iter().map(|(k, v)| format!("{k}={}", python_list_value(v))).collect();
                format!("[{name}({})]", args.join(", "))
            }
        },
    }
}

/// A value inside a `python_list` call: strings in double quotes (unescaped), dicts as `{k=v}`.
fn python_list_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Array(items) => format!("[{}]", items.iter().map(python_list_value).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", python_list_value(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => py_str(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(name: &str, args: Value) -> ToolCall {
        let Value::Object(arguments) = args else {
            return ToolCall { call_id: "c".into(), tool_name: name.into(), arguments: Map::new() };
        };
        ToolCall { call_id: "c".into(), tool_name: name.into(), arguments }
    }

    #[test]
    fn builtin_calls() {
        let c = call("brave_search", json!({"query": "weather"}));
        assert_eq!(encode_tool_call(&c, ToolPromptFormat::Json), "brave_search.call(query=\"weather\")");
        let c = call("code_interpreter", json!({"code": "print(1)"}));
        assert_eq!(encode_tool_call(&c, ToolPromptFormat::Json), "print(1)");
    }

    #[test]
    fn custom_calls_in_each_format() {
        let c = call("get", json!({"city": "Paris", "n": 2, "ok": true, "x": null, "l": [1.5, "a"], "d": {"k": "v"}}));
        assert_eq!(
            encode_tool_call(&c, ToolPromptFormat::Json),
            r#"{"type": "function", "name": "get", "parameters": {"city": "Paris", "n": 2, "ok": true, "x": null, "l": [1.5, "a"], "d": {"k": "v"}}}"#
        );
        assert_eq!(
            encode_tool_call(&c, ToolPromptFormat::FunctionTag),
            r#"<function=get>{"city": "Paris", "n": 2, "ok": true, "x": null, "l": [1.5, "a"], "d": {"k": "v"}}</function>"#
        );
        assert_eq!(
            encode_tool_call(&c, ToolPromptFormat::PythonList),
            r#"[get(city="Paris", n=2, ok=True, x=None, l=[1.5, "a"], d={k="v"})]"#
        );
    }

    #[test]
    fn dialog_text() {
        let msgs: Vec<Message> = serde_json::from_value(json!([
            {"role": "user", "content": ["look", {"image": {"uri": "https://x/y.png"}}], "context": "ctx"},
            {"role": "assistant", "content": "", "stop_reason": "end_of_message",
             "tool_calls": [{"call_id": "1", "tool_name": "brave_search", "arguments": {"query": "q"}}]},
            {"role": "ipython", "call_id": "1", "tool_name": "brave_search", "content": "r"},
        ]))
        .unwrap_or_default();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            join(&dialog_pieces(&msgs, ToolPromptFormat::Json)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nlook<|image|>\n\nctx<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>brave_search.call(query=\"q\")<|eom_id|>\
             <|start_header_id|>ipython<|end_header_id|>\n\nr<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}

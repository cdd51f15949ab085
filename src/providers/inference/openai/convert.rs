//! Translation between the Llama Stack request and response types and `OpenAI`'s chat and
//! completion JSON: messages, tool calls, tool definitions, sampling parameters and finish reasons.

use serde_json::{Map, Value, json};

use super::logprobs;
use super::wire::{ChatAnswer, CompletionAnswer};
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{WireToolCall, function_tool};
use crate::providers::inference::text;
use crate::types::common::{
    AssistantRole, CompletionMessage, ImageMedia, ImageSource, InterleavedTextMedia, MediaItem, Message,
    SamplingParams, SamplingStrategy, StopReason, ToolCall, ToolChoice,
};
use crate::types::inference::{ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse};

/// Separator between the text items of interleaved content.
const TEXT_SEP: &str = " ";

/// Adds the sampling parameters to a request body, with the same rules as the Ollama provider:
/// a non-zero temperature under every strategy (clients set it without naming a strategy), else
/// 0 under the greedy strategy so greedy really is greedy; `top_p` and `top_k` only under the
/// strategy that uses them; `max_tokens` when positive. `top_k` and `repetition_penalty` are not
/// `OpenAI`'s own; vLLM and llama.cpp take them, and they are only sent when the caller asked.
pub(super) fn add_sampling(body: &mut Map<String, Value>, p: &SamplingParams) {
    match p.temperature.filter(|t| *t != 0.0) {
        Some(t) => {
            body.insert("temperature".into(), json!(t));
        }
        None if p.strategy == SamplingStrategy::Greedy => {
            body.insert("temperature".into(), json!(0.0));
        }
        None => {}
    }
    if p.strategy == SamplingStrategy::TopP {
        if let Some(v) = p.top_p.filter(|v| *v != 0.0) {
            body.insert("top_p".into(), json!(v));
        }
    }
    if p.strategy == SamplingStrategy::TopK {
        if let Some(k) = p.top_k.filter(|k| *k != 0) {
            body.insert("top_k".into(), json!(k));
        }
    }
    if let Some(n) = p.max_tokens.filter(|n| *n > 0) {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some(r) = p.repetition_penalty.filter(|r| (*r - 1.0).abs() > f64::EPSILON) {
        body.insert("repetition_penalty".into(), json!(r));
    }
}

/// The `/chat/completions` body.
pub(super) fn chat_body(model: &str, req: &ChatCompletionRequest, stream: bool) -> Result<Value> {
    let messages = req.messages.iter().enumerate().map(|(i, m)| message(i, m)).collect::<Result<Vec<_>>>()?;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    if !req.tools.is_empty() {
        body.insert("tools".into(), req.tools.iter().map(function_tool).collect());
        let choice = match req.tool_choice.unwrap_or_default() {
            ToolChoice::Auto => "auto",
            ToolChoice::Required => "required",
        };
        body.insert("tool_choice".into(), json!(choice));
    }
    add_sampling(&mut body, &req.sampling());
    if let Some(k) = text::logprobs_top_k(req.logprobs.as_ref())? {
        body.insert("logprobs".into(), json!(true));
        body.insert("top_logprobs".into(), json!(k));
    }
    Ok(Value::Object(body))
}

/// The `/completions` body. The prompt is sent as it is; the server's own template does not apply.
pub(super) fn completion_body(model: &str, req: &CompletionRequest, stream: bool) -> Result<Value> {
    if req.content.has_media() {
        return Err(Error::invalid(
            "`content`: an OpenAI-compatible `/completions` endpoint takes text only; send images through chat_completion",
        ));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("prompt".into(), json!(req.content.as_text(TEXT_SEP)));
    body.insert("stream".into(), json!(stream));
    add_sampling(&mut body, &req.sampling());
    if let Some(k) = text::logprobs_top_k(req.logprobs.as_ref())? {
        body.insert("logprobs".into(), json!(k));
    }
    Ok(Value::Object(body))
}

fn message(index: usize, m: &Message) -> Result<Value> {
    let at = format!("messages[{index}].content");
    let mut out = Map::new();
    match m {
        Message::System(s) => {
            out.insert("role".into(), json!("system"));
            out.insert("content".into(), json!(text_only(&s.content, &at)?));
        }
        Message::User(u) => {
            out.insert("role".into(), json!("user"));
            // Retrieved context travels after the question, as upstream's prompt format puts it.
            let context = u.context.as_ref().map(|c| format!("\n\n{}", c.as_text(TEXT_SEP)));
            out.insert("content".into(), user_content(&u.content, context, &at)?);
        }
        Message::Ipython(t) => {
            out.insert("role".into(), json!("tool"));
            out.insert("tool_call_id".into(), json!(t.call_id));
            out.insert("content".into(), json!(text_only(&t.content, &at)?));
        }
        Message::Assistant(a) => {
            out.insert("role".into(), json!("assistant"));
            let text = text_only(&a.content, &at)?;
            if a.tool_calls.is_empty() {
                out.insert("content".into(), json!(text));
            } else {
                out.insert("content".into(), if text.is_empty() { Value::Null } else { json!(text) });
                let calls: Vec<Value> = a
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.call_id,
                            "type": "function",
                            "function": {"name": c.tool_name.as_str(), "arguments": Value::Object(c.arguments.clone()).to_string()},
                        })
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
        }
    }
    Ok(Value::Object(out))
}

fn items(content: &InterleavedTextMedia) -> Vec<MediaItem> {
    match content {
        InterleavedTextMedia::Text(t) => vec![MediaItem::Text(t.clone())],
        InterleavedTextMedia::Image(img) => vec![MediaItem::Image(img.clone())],
        InterleavedTextMedia::List(items) => items.clone(),
    }
}

/// Text of a message that cannot carry images in `OpenAI`'s format.
fn text_only(content: &InterleavedTextMedia, at: &str) -> Result<String> {
    if content.has_media() {
        return Err(Error::invalid(format!(
            "`{at}`: only user messages may hold images for an OpenAI-compatible server"
        )));
    }
    Ok(content.as_text(TEXT_SEP))
}

/// A user message's content, with `extra` text after it: a string, or content parts when it
/// holds images.
fn user_content(content: &InterleavedTextMedia, extra: Option<String>, at: &str) -> Result<Value> {
    if !content.has_media() {
        return Ok(json!(content.as_text(TEXT_SEP) + extra.as_deref().unwrap_or_default()));
    }
    let mut parts = items(content)
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            MediaItem::Text(t) => Ok(json!({"type": "text", "text": t})),
            MediaItem::Image(img) => image_part(img, &format!("{at}[{i}]")),
        })
        .collect::<Result<Vec<_>>>()?;
    parts.extend(extra.map(|t| json!({"type": "text", "text": t})));
    Ok(Value::Array(parts))
}

/// An image as an `image_url` part: a web address or a `data:` URI, both of which `OpenAI`'s
/// format takes as they are.
fn image_part(img: &ImageMedia, at: &str) -> Result<Value> {
    match &img.image {
        ImageSource::Url(u) if !u.uri.trim().is_empty() => {
            Ok(json!({"type": "image_url", "image_url": {"url": u.uri}}))
        }
        _ => Err(Error::invalid(format!(
            "`{at}`: the image carries no data; send it as a URL or a `data:image/...;base64,...` URI"
        ))),
    }
}

/// The stop reason for a `finish_reason`, with upstream's mapping (unknown ones count as the
/// token limit).
pub(super) fn stop_reason(finish_reason: Option<&str>, called_tool: bool) -> StopReason {
    // A tool call ends the message but not the turn: the caller runs the tool and asks again.
    if called_tool {
        return StopReason::EndOfMessage;
    }
    match finish_reason {
        None | Some("stop" | "eos" | "end_turn") => StopReason::EndOfTurn,
        Some("tool_calls" | "function_call" | "eom") => StopReason::EndOfMessage,
        Some(_) => StopReason::OutOfTokens,
    }
}

fn parse_calls(calls: &[WireToolCall]) -> Result<Vec<ToolCall>, String> {
    calls.iter().map(WireToolCall::parse).collect()
}

/// A whole `/chat/completions` answer as a response.
pub(super) fn chat_response(answer: ChatAnswer) -> Result<ChatCompletionResponse, String> {
    let choice = answer.choices.into_iter().next().ok_or("an answer without choices")?;
    let (content, calls) = match choice.message {
        Some(m) => (m.content.unwrap_or_default(), m.tool_calls.unwrap_or_default()),
        None => (String::new(), Vec::new()),
    };
    let tool_calls = parse_calls(&calls)?;
    let stop_reason = stop_reason(choice.finish_reason.as_deref(), !tool_calls.is_empty());
    let scores = choice.logprobs.as_ref().map(logprobs::from_chat).and_then(logprobs::non_empty);
    Ok(ChatCompletionResponse {
        completion_message: CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text(content),
            stop_reason,
            tool_calls,
        },
        logprobs: scores,
    })
}

/// A whole `/completions` answer as a response.
pub(super) fn completion_response(answer: CompletionAnswer) -> Result<CompletionResponse, String> {
    let choice = answer.choices.into_iter().next().ok_or("an answer without choices")?;
    Ok(CompletionResponse {
        completion_message: CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text(choice.text.unwrap_or_default()),
            stop_reason: stop_reason(choice.finish_reason.as_deref(), false),
            tool_calls: Vec::new(),
        },
        logprobs: choice.logprobs.as_ref().map(logprobs::from_completion).and_then(logprobs::non_empty),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::ToolName;

    fn chat(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sampling_follows_the_strategy() {
        let body = |v: Value| {
            let mut m = Map::new();
            add_sampling(&mut m, &serde_json::from_value(v).unwrap());
            Value::Object(m)
        };
        assert_eq!(body(json!({})), json!({"temperature": 0.0}));
        assert_eq!(
            body(json!({"strategy": "top_p", "temperature": 0.7, "top_p": 0.9, "top_k": 5, "max_tokens": 0})),
            json!({"temperature": 0.7, "top_p": 0.9})
        );
        assert_eq!(body(json!({"strategy": "top_p", "top_p": 0.5})), json!({"top_p": 0.5}));
        assert_eq!(
            body(json!({"strategy": "top_k", "top_k": 40, "max_tokens": 64, "repetition_penalty": 1.1})),
            json!({"top_k": 40, "max_tokens": 64, "repetition_penalty": 1.1})
        );
        assert_eq!(body(json!({"strategy": "greedy", "top_p": 0.5, "temperature": 0.2})), json!({"temperature": 0.2}));
    }

    #[test]
    fn messages_tools_and_tool_results_map_to_openai_roles() {
        let req = chat(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather in Paris?", "context": "it is spring"},
                {"role": "assistant", "content": "", "stop_reason": "end_of_message", "tool_calls": [
                    {"call_id": "c1", "tool_name": "get_weather", "arguments": {"city": "Paris"}}]},
                {"role": "ipython", "call_id": "c1", "tool_name": "get_weather", "content": "sunny"},
            ],
            "tools": [{"tool_name": "get_weather", "parameters": {"city": {"param_type": "str"}}}],
            "tool_choice": "required",
            "sampling_params": {"max_tokens": 10},
        }));
        let body = chat_body("served", &req, true).unwrap();
        assert_eq!(body["model"], "served");
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], "string");
        let m = &body["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(m[1], json!({"role": "user", "content": "weather in Paris?\n\nit is spring"}));
        assert_eq!(m[2]["content"], Value::Null);
        assert_eq!(m[2]["tool_calls"][0]["id"], "c1");
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}));
        let no_tools = chat_body("m", &chat(json!({"model": "m", "messages": []})), false).unwrap();
        assert!(no_tools.get("tools").is_none() && no_tools.get("tool_choice").is_none());
    }

    #[test]
    fn images_become_image_url_parts_in_user_messages_only() {
        let req = chat(json!({"model": "m", "messages": [{"role": "user", "content": [
            "what is this?", {"image": {"uri": "https://example.com/cat.png"}}]}]}));
        let body = chat_body("m", &req, false).unwrap();
        assert_eq!(
            body["messages"][0]["content"],
            json!([{"type": "text", "text": "what is this?"},
                   {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}])
        );
        let req = chat(json!({"model": "m", "messages": [{"role": "system", "content": {"image": {"uri": "x"}}}]}));
        let e = chat_body("m", &req, false).unwrap_err().to_string();
        assert!(e.contains("messages[0].content"), "{e}");
        let req =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": [{"image": {"format": "PNG"}}]}]}));
        let e = chat_body("m", &req, false).unwrap_err().to_string();
        assert!(e.contains("messages[0].content[0]"), "{e}");
        let completion: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "content": {"image": {"uri": "x"}}})).unwrap();
        assert!(completion_body("m", &completion, false).is_err());
    }

    #[test]
    fn answers_map_back_with_stop_reasons() {
        let answer: ChatAnswer = serde_json::from_value(json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "brave_search", "arguments": "{\"query\": \"x\"}"}}]}}]}))
        .unwrap();
        let r = chat_response(answer).unwrap().completion_message;
        assert_eq!(r.stop_reason, StopReason::EndOfMessage);
        assert_eq!(r.tool_calls[0].call_id, "call_1");
        assert_eq!(r.tool_calls[0].tool_name.as_str(), "brave_search");
        assert!(matches!(r.tool_calls[0].tool_name, ToolName::Builtin(_)));
        assert_eq!(r.content, InterleavedTextMedia::Text(String::new()));

        let answer: CompletionAnswer =
            serde_json::from_value(json!({"choices": [{"text": "abc", "finish_reason": "length"}]})).unwrap();
        let r = completion_response(answer).unwrap().completion_message;
        assert_eq!((r.content, r.stop_reason), (InterleavedTextMedia::Text("abc".into()), StopReason::OutOfTokens));
        assert!(chat_response(serde_json::from_value(json!({"choices": []})).unwrap()).is_err());

        assert_eq!(stop_reason(Some("stop"), false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(None, false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(Some("length"), false), StopReason::OutOfTokens);
        assert_eq!(stop_reason(Some("tool_calls"), false), StopReason::EndOfMessage);
        assert_eq!(stop_reason(Some("content_filter"), false), StopReason::OutOfTokens);
        assert_eq!(stop_reason(Some("stop"), true), StopReason::EndOfMessage);
    }
}

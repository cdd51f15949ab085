//! Translation between the Llama Stack request and response types and Ollama's JSON: messages,
//! tool definitions, sampling options, images, tool calls and stop reasons.

use serde_json::{Map, Value, json};

use super::wire::{ChatChunk, GenerateChunk};
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{WireToolCall, function_tool};
use crate::types::common::{
    CompletionMessage, ImageMedia, ImageSource, InterleavedTextMedia, MediaItem, Message, SamplingParams,
    SamplingStrategy, StopReason,
};
use crate::types::inference::{ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse};

/// Separator between the text items of interleaved content.
const TEXT_SEP: &str = " ";

/// Ollama's `options` for upstream's sampling parameters.
pub(super) fn options(p: &SamplingParams) -> Map<String, Value> {
    let mut o = Map::new();
    // Temperature is forwarded under every strategy: clients set it without naming a strategy,
    // and upstream's reference implementation samples by temperature alone. Without one, the
    // greedy strategy (the default) sends 0 so greedy really is greedy; upstream sent nothing and
    // Ollama then sampled at its own default temperature.
    match p.temperature.filter(|t| *t != 0.0) {
        Some(t) => {
            o.insert("temperature".into(), json!(t));
        }
        None if p.strategy == SamplingStrategy::Greedy => {
            o.insert("temperature".into(), json!(0.0));
        }
        None => {}
    }
    if p.strategy == SamplingStrategy::TopP {
        if let Some(v) = p.top_p.filter(|v| *v != 0.0) {
            o.insert("top_p".into(), json!(v));
        }
    }
    if p.strategy == SamplingStrategy::TopK {
        if let Some(k) = p.top_k.filter(|k| *k != 0) {
            o.insert("top_k".into(), json!(k));
        }
    }
    if let Some(n) = p.max_tokens.filter(|n| *n > 0) {
        o.insert("num_predict".into(), json!(n));
    }
    if let Some(r) = p.repetition_penalty.filter(|r| (*r - 1.0).abs() > f64::EPSILON) {
        o.insert("repeat_penalty".into(), json!(r));
    }
    o
}

/// The `/api/chat` body.
pub(super) fn chat_body(tag: &str, req: &ChatCompletionRequest, stream: bool) -> Result<Value> {
    let messages = req.messages.iter().enumerate().map(|(i, m)| message(i, m)).collect::<Result<Vec<_>>>()?;
    let mut body = Map::new();
    body.insert("model".into(), json!(tag));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    // `tool_choice` has no Ollama counterpart: the model decides whether to call a tool.
    if !req.tools.is_empty() {
        body.insert("tools".into(), req.tools.iter().map(function_tool).collect());
    }
    let options = options(&req.sampling());
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Ok(Value::Object(body))
}

/// The `/api/generate` body. `raw` stays off, so Ollama applies the model's own template.
pub(super) fn generate_body(tag: &str, req: &CompletionRequest, stream: bool) -> Result<Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(tag));
    body.insert("prompt".into(), json!(req.content.as_text(TEXT_SEP)));
    body.insert("raw".into(), json!(false));
    body.insert("stream".into(), json!(stream));
    let images = images(&req.content, "content")?;
    if !images.is_empty() {
        body.insert("images".into(), json!(images));
    }
    let options = options(&req.sampling());
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Ok(Value::Object(body))
}

fn message(index: usize, m: &Message) -> Result<Value> {
    let at = format!("messages[{index}].content");
    let mut out = Map::new();
    let (role, text) = match m {
        Message::System(s) => ("system", s.content.as_text(TEXT_SEP)),
        Message::User(u) => {
            let mut text = u.content.as_text(TEXT_SEP);
            // Retrieved context travels after the question, as upstream's prompt format puts it.
            if let Some(ctx) = &u.context {
                text.push_str("\n\n");
                text.push_str(&ctx.as_text(TEXT_SEP));
            }
            ("user", text)
        }
        Message::Ipython(t) => {
            out.insert("tool_name".into(), json!(t.tool_name.as_str()));
            ("tool", t.content.as_text(TEXT_SEP))
        }
        Message::Assistant(a) => {
            if !a.tool_calls.is_empty() {
                let calls: Vec<Value> = a
                    .tool_calls
                    .iter()
                    .map(|c| json!({"function": {"name": c.tool_name.as_str(), "arguments": c.arguments}}))
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
            ("assistant", a.content.as_text(TEXT_SEP))
        }
    };
    out.insert("role".into(), json!(role));
    out.insert("content".into(), json!(text));
    let images = images(m.content(), &at)?;
    if !images.is_empty() {
        out.insert("images".into(), json!(images));
    }
    Ok(Value::Object(out))
}

/// The base64 payloads of the images in `content`. Ollama takes image bytes only, so a linked
/// image is refused rather than fetched on the caller's behalf.
fn images(content: &InterleavedTextMedia, at: &str) -> Result<Vec<String>> {
    match content {
        InterleavedTextMedia::Text(_) => Ok(Vec::new()),
        InterleavedTextMedia::Image(img) => Ok(vec![inline_base64(img, at)?]),
        InterleavedTextMedia::List(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                MediaItem::Image(img) => Some(inline_base64(img, &format!("{at}[{i}]"))),
                MediaItem::Text(_) => None,
            })
            .collect(),
    }
}

fn inline_base64(img: &ImageMedia, at: &str) -> Result<String> {
    let uri = match &img.image {
        ImageSource::Url(u) => u.uri.as_str(),
        ImageSource::Inline { .. } => {
            return Err(Error::invalid(format!(
                "`{at}`: the image carries no data; send it as a `data:image/...;base64,...` URI"
            )));
        }
    };
    let short: String = uri.chars().take(60).collect();
    let data = uri
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .filter(|(meta, _)| meta.ends_with(";base64"))
        .map(|(_, data)| data);
    let Some(data) = data else {
        return Err(Error::invalid(format!(
            "`{at}`: image `{short}` is not inline data; the Ollama provider takes images only as \
             `data:image/...;base64,...` URIs"
        )));
    };
    let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if data.is_empty() || !data.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
        return Err(Error::invalid(format!("`{at}`: image `{short}` does not hold valid base64 data")));
    }
    Ok(data)
}

/// The stop reason for Ollama's `done_reason`.
pub(super) fn stop_reason(done_reason: Option<&str>, called_tool: bool) -> StopReason {
    // A tool call ends the message but not the turn: the caller runs the tool and asks again, so
    // `end_of_message` (upstream's `<|eom_id|>`) is what the agent loop needs to see.
    if called_tool {
        return StopReason::EndOfMessage;
    }
    match done_reason {
        // Servers older than `done_reason` stopped only at the end of the turn or at the limit;
        // the end of the turn is by far the common case.
        None | Some("stop") => StopReason::EndOfTurn,
        // `length`, and anything else, as upstream maps unknown finish reasons.
        Some(_) => StopReason::OutOfTokens,
    }
}

/// A whole `/api/chat` answer as a response.
pub(super) fn chat_response(chunk: ChatChunk) -> Result<ChatCompletionResponse, String> {
    let (content, calls) = match chunk.message {
        Some(m) => (m.content.unwrap_or_default(), m.tool_calls.unwrap_or_default()),
        None => (String::new(), Vec::new()),
    };
    let tool_calls = calls.iter().map(WireToolCall::parse).collect::<Result<Vec<_>, _>>()?;
    let stop_reason = stop_reason(chunk.done_reason.as_deref(), !tool_calls.is_empty());
    Ok(ChatCompletionResponse {
        completion_message: CompletionMessage {
            role: crate::types::common::AssistantRole::Value,
            content: InterleavedTextMedia::Text(content),
            stop_reason,
            tool_calls,
        },
        logprobs: None,
    })
}

/// A whole `/api/generate` answer as a response.
pub(super) fn completion_response(chunk: GenerateChunk) -> CompletionResponse {
    CompletionResponse {
        completion_message: CompletionMessage {
            role: crate::types::common::AssistantRole::Value,
            content: InterleavedTextMedia::Text(chunk.response.unwrap_or_default()),
            stop_reason: stop_reason(chunk.done_reason.as_deref(), false),
            tool_calls: Vec::new(),
        },
        logprobs: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::{ToolName, Url, UserMessage};

    fn sampling(v: Value) -> SamplingParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_sampling_is_greedy() {
        assert_eq!(Value::Object(options(&SamplingParams::default())), json!({"temperature": 0.0}));
    }

    #[test]
    fn options_follow_the_strategy() {
        let o = options(&sampling(json!({"strategy": "top_p", "temperature": 0.7, "top_p": 0.9, "top_k": 5})));
        assert_eq!(Value::Object(o), json!({"temperature": 0.7, "top_p": 0.9}));
        let o =
            options(&sampling(json!({"strategy": "top_k", "top_k": 40, "max_tokens": 64, "repetition_penalty": 1.1})));
        assert_eq!(Value::Object(o), json!({"top_k": 40, "num_predict": 64, "repeat_penalty": 1.1}));
        let o = options(&sampling(json!({"strategy": "top_p", "top_p": 0.5})));
        assert_eq!(Value::Object(o), json!({"top_p": 0.5}));
        let o = options(&sampling(json!({"temperature": 0.3, "max_tokens": -1, "repetition_penalty": null})));
        assert_eq!(Value::Object(o), json!({"temperature": 0.3}));
    }

    #[test]
    fn tool_calls_come_back_with_ids_and_object_arguments() {
        let wire: WireToolCall =
            serde_json::from_value(json!({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}))
                .unwrap();
        let call = wire.parse().unwrap();
        assert_eq!(call.tool_name, ToolName::Custom("get_weather".into()));
        assert_eq!(call.arguments["city"], "Paris");
        assert_eq!(call.call_id.len(), 36);
        let text_args: WireToolCall = serde_json::from_value(
            json!({"id": "c1", "function": {"name": "brave_search", "arguments": "{\"query\":\"x\"}"}}),
        )
        .unwrap();
        let call = text_args.parse().unwrap();
        assert_eq!((call.call_id.as_str(), call.tool_name.as_str()), ("c1", "brave_search"));
        let bad: WireToolCall = serde_json::from_value(json!({"function": {"name": "f", "arguments": [1]}})).unwrap();
        assert!(bad.parse().is_err_and(|e| e.contains("`f`")));
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(Some("stop"), false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(None, false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(Some("length"), false), StopReason::OutOfTokens);
        assert_eq!(stop_reason(Some("stop"), true), StopReason::EndOfMessage);
        assert_eq!(stop_reason(Some("unload"), false), StopReason::OutOfTokens);
    }

    #[test]
    fn images_must_be_inline_base64() {
        let msg = |uri: &str| {
            Message::User(UserMessage {
                role: crate::types::common::UserRole::Value,
                content: InterleavedTextMedia::List(vec![
                    MediaItem::Text("what is this?".into()),
                    MediaItem::Image(ImageMedia { image: ImageSource::Url(Url { uri: uri.into() }) }),
                ]),
                context: None,
            })
        };
        let v = message(0, &msg("data:image/png;base64,iVBO Rw==")).unwrap();
        assert_eq!(v["images"], json!(["iVBORw=="]));
        assert_eq!(v["content"], "what is this? <media>");
        let e = message(2, &msg("https://example.com/cat.png")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("messages[2].content[1]") && e.contains("https://example.com/cat.png"), "{e}");
        assert!(message(0, &msg("data:image/png,rawbytes")).is_err());
        assert!(message(0, &msg("data:image/png;base64,@@")).is_err());
    }
}

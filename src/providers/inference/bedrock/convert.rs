//! Translation between the Llama Stack request and response types and Bedrock's JSON: Converse
//! messages, tool specs, inference settings and stop reasons, and the body and answer of Meta
//! Llama's native completion API.

use serde_json::{Map, Value, json};

use super::wire::{ConverseAnswer, LlamaGeneration};
use crate::error::{Error, Result};
use crate::providers::inference::http_util::function_tool;
use crate::types::common::{
    AssistantRole, CompletionMessage, ImageMedia, ImageSource, InterleavedTextMedia, JsonObject, MediaItem, Message,
    SamplingParams, SamplingStrategy, StopReason, ToolCall, ToolChoice, ToolDefinition, ToolName,
};
use crate::types::inference::{ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse};

/// Separator between adjacent text items of interleaved content, as elsewhere in the crate.
const TEXT_SEP: &str = " ";

/// The sampling settings both APIs take. The temperature rule is the one the other remote
/// providers follow: a non-zero temperature whatever the strategy (clients set it without naming
/// one), else 0 under greedy so greedy really is greedy. `top_p` only under its strategy, the
/// token limit only when positive. Bedrock's Llama models take no `top_k` or repetition penalty.
#[derive(Debug, Default, PartialEq)]
struct Sampling {
    max_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
}

fn sampling(p: &SamplingParams) -> Sampling {
    let temperature = match p.temperature.filter(|t| *t != 0.0) {
        Some(t) => Some(t),
        None if p.strategy == SamplingStrategy::Greedy => Some(0.0),
        None => None,
    };
    let top_p = if p.strategy == SamplingStrategy::TopP { p.top_p.filter(|v| *v != 0.0) } else { None };
    Sampling { max_tokens: p.max_tokens.filter(|n| *n > 0), temperature, top_p }
}

/// The body of `converse` and `converse-stream` (the model goes in the path).
///
/// `with_tools` is false for streams: Bedrock documents tool use for Meta Llama 3.1 through
/// Converse but not through `ConverseStream` ("streaming tool use": no), so, as upstream did, a
/// streamed request leaves the tools out rather than have Bedrock refuse it.
pub(super) fn converse_body(req: &ChatCompletionRequest, with_tools: bool) -> Result<Value> {
    let (messages, system) = messages(&req.messages)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let s = sampling(&req.sampling());
    let mut config = Map::new();
    if let Some(n) = s.max_tokens {
        config.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = s.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = s.top_p {
        config.insert("topP".into(), json!(p));
    }
    if !config.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(config));
    }
    if with_tools && !req.tools.is_empty() {
        body.insert("toolConfig".into(), tool_config(&req.tools, req.tool_choice.unwrap_or_default()));
    }
    Ok(Value::Object(body))
}

/// Tool specs with the JSON schema the other providers send. `auto` is Bedrock's default and is
/// not sent, since only some models accept a `toolChoice`; `required` becomes `any`.
fn tool_config(tools: &[ToolDefinition], choice: ToolChoice) -> Value {
    let specs: Vec<Value> = tools
        .iter()
        .map(|t| {
            let f = &function_tool(t)["function"];
            let mut spec = Map::new();
            spec.insert("name".into(), f["name"].clone());
            if f["description"].as_str().is_some_and(|d| !d.is_empty()) {
                spec.insert("description".into(), f["description"].clone());
            }
            spec.insert("inputSchema".into(), json!({"json": f["parameters"]}));
            json!({"toolSpec": spec})
        })
        .collect();
    let mut config = json!({"tools": specs});
    if choice == ToolChoice::Required {
        config["toolChoice"] = json!({"any": {}});
    }
    config
}

/// Converse messages and system blocks. Tool results travel in a user message, and Converse
/// wants the roles to alternate, so consecutive messages of one role are merged.
fn messages(input: &[Message]) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut system = Vec::new();
    for (i, m) in input.iter().enumerate() {
        let at = format!("messages[{i}].content");
        let (role, blocks) = match m {
            Message::System(s) => {
                if s.content.has_media() {
                    return Err(Error::invalid(format!("`{at}`: a system message cannot hold images")));
                }
                system.push(json!({"text": s.content.as_text(TEXT_SEP)}));
                continue;
            }
            Message::User(u) => {
                let mut blocks = content_blocks(&u.content, &at)?;
                // Retrieved context goes after the question, as the Llama prompt format puts it.
                if let Some(c) = &u.context {
                    blocks.push(json!({"text": format!("\n\n{}", c.as_text(TEXT_SEP))}));
                }
                ("user", blocks)
            }
            Message::Ipython(t) => {
                let result = json!({"toolResult": {
                    "toolUseId": t.call_id,
                    "content": content_blocks(&t.content, &at)?,
                    "status": "success",
                }});
                ("user", vec![result])
            }
            Message::Assistant(a) => {
                let text = a.content.as_text(TEXT_SEP);
                if a.content.has_media() {
                    return Err(Error::invalid(format!("`{at}`: an assistant message cannot hold images")));
                }
                let mut blocks = Vec::new();
                // Bedrock refuses blank text blocks; a message of tool calls alone needs none.
                if !text.is_empty() || a.tool_calls.is_empty() {
                    blocks.push(json!({"text": text}));
                }
                for c in &a.tool_calls {
                    blocks.push(json!({"toolUse": {
                        "toolUseId": c.call_id,
                        "name": c.tool_name.as_str(),
                        "input": Value::Object(c.arguments.clone()),
                    }}));
                }
                ("assistant", blocks)
            }
        };
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    Ok((messages, system))
}

/// Content as Converse blocks: adjacent text items joined into one text block, images as image
/// blocks.
fn content_blocks(content: &InterleavedTextMedia, at: &str) -> Result<Vec<Value>> {
    let items = match content {
        InterleavedTextMedia::Text(t) => return Ok(vec![json!({"text": t})]),
        InterleavedTextMedia::Image(img) => return Ok(vec![image_block(img, at)?]),
        InterleavedTextMedia::List(items) => items,
    };
    let mut blocks = Vec::new();
    let mut text: Option<String> = None;
    for (i, item) in items.iter().enumerate() {
        match item {
            MediaItem::Text(t) => match &mut text {
                Some(acc) => {
                    acc.push_str(TEXT_SEP);
                    acc.push_str(t);
                }
                None => text = Some(t.clone()),
            },
            MediaItem::Image(img) => {
                blocks.extend(text.take().map(|t| json!({"text": t})));
                blocks.push(image_block(img, &format!("{at}[{i}]"))?);
            }
        }
    }
    blocks.extend(text.map(|t| json!({"text": t})));
    Ok(blocks)
}

/// An image block from a `data:` URI. Bedrock takes image bytes only, never a link.
fn image_block(img: &ImageMedia, at: &str) -> Result<Value> {
    let uri = match &img.image {
        ImageSource::Url(u) => u.uri.trim(),
        ImageSource::Inline { .. } => "",
    };
    let parsed = uri.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,"));
    let Some((mime, data)) = parsed else {
        return Err(Error::invalid(format!(
            "`{at}`: Bedrock takes images as data, not links; send the image as a `data:image/png;base64,...` URI"
        )));
    };
    let format = match mime.trim().to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(Error::invalid(format!("`{at}`: Bedrock takes png, jpeg, gif or webp images, not `{other}`")));
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// The stop reason for Bedrock's `stopReason`. A tool call ends the message but not the turn
/// (Llama's `eom`): the caller runs the tool and asks again. `max_tokens` is the token limit;
/// everything else (`end_turn`, `stop_sequence`, a guardrail or content filter) ends the turn.
pub(super) fn stop_reason(bedrock: Option<&str>, called_tool: bool) -> StopReason {
    match bedrock {
        _ if called_tool => StopReason::EndOfMessage,
        Some("tool_use") => StopReason::EndOfMessage,
        Some("max_tokens") => StopReason::OutOfTokens,
        _ => StopReason::EndOfTurn,
    }
}

/// A tool call Bedrock returned, with a built-in tool's name mapped back to the built-in.
pub(super) fn tool_call(id: &str, name: &str, input: &Value) -> Result<ToolCall, String> {
    if name.is_empty() {
        return Err("a tool call without a name".into());
    }
    let arguments: JsonObject = match input {
        Value::Object(m) => m.clone(),
        Value::Null => JsonObject::new(),
        other => return Err(format!("the input of tool call `{name}` is not a JSON object: {other}")),
    };
    let call_id = if id.is_empty() { uuid::Uuid::new_v4().to_string() } else { id.to_owned() };
    Ok(ToolCall { call_id, tool_name: ToolName::from(name), arguments })
}

/// A whole Converse answer as a response: its text blocks joined, its tool calls in order.
pub(super) fn chat_response(answer: ConverseAnswer) -> Result<ChatCompletionResponse, String> {
    let message = answer.output.and_then(|o| o.message).ok_or("an answer without `output.message`")?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in message.content {
        if let Some(t) = block.text {
            text.push_str(&t);
        }
        if let Some(u) = block.tool_use {
            tool_calls.push(tool_call(&u.id, &u.name, &u.input)?);
        }
    }
    let stop_reason = stop_reason(answer.stop_reason.as_deref(), !tool_calls.is_empty());
    Ok(ChatCompletionResponse {
        completion_message: CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text(text),
            stop_reason,
            tool_calls,
        },
        logprobs: None,
    })
}

/// The body of Meta Llama's native `invoke`, with the prompt rendered as a Llama completion.
pub(super) fn invoke_body(req: &CompletionRequest) -> Result<Value> {
    if req.content.has_media() {
        return Err(Error::invalid("`content`: Bedrock's Llama completion takes text only"));
    }
    let s = sampling(&req.sampling());
    let mut body = Map::new();
    body.insert("prompt".into(), json!(crate::prompt::render_completion_prompt(&req.content)));
    if let Some(n) = s.max_tokens {
        body.insert("max_gen_len".into(), json!(n));
    }
    if let Some(t) = s.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = s.top_p {
        body.insert("top_p".into(), json!(p));
    }
    Ok(Value::Object(body))
}

/// Llama's native `stop_reason`: `stop` ends the turn, `length` is the token limit; anything
/// else counts as the limit, as for the other completion backends.
pub(super) fn llama_stop_reason(reason: Option<&str>) -> StopReason {
    match reason {
        None | Some("stop") => StopReason::EndOfTurn,
        Some(_) => StopReason::OutOfTokens,
    }
}

pub(super) fn completion_response(answer: LlamaGeneration) -> CompletionResponse {
    CompletionResponse {
        completion_message: CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text(answer.generation.unwrap_or_default()),
            stop_reason: llama_stop_reason(answer.stop_reason.as_deref()),
            tool_calls: Vec::new(),
        },
        logprobs: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::BuiltinTool;

    fn chat(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sampling_follows_the_strategy() {
        let s = |v: Value| sampling(&serde_json::from_value(v).unwrap());
        assert_eq!(s(json!({})), Sampling { temperature: Some(0.0), ..Sampling::default() });
        assert_eq!(
            s(json!({"strategy": "top_p", "temperature": 0.7, "top_p": 0.9, "max_tokens": 50})),
            Sampling { max_tokens: Some(50), temperature: Some(0.7), top_p: Some(0.9) }
        );
        assert_eq!(s(json!({"strategy": "top_k", "top_k": 5})), Sampling::default());
    }

    #[test]
    fn messages_roles_tools_and_system() {
        let req = chat(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": ["weather in", "Paris?"], "context": "it is spring"},
                {"role": "assistant", "content": "", "stop_reason": "end_of_message", "tool_calls": [
                    {"call_id": "c1", "tool_name": "get_weather", "arguments": {"city": "Paris"}},
                    {"call_id": "c2", "tool_name": "brave_search", "arguments": {"query": "paris"}}]},
                {"role": "ipython", "call_id": "c1", "tool_name": "get_weather", "content": "sunny"},
                {"role": "ipython", "call_id": "c2", "tool_name": "brave_search", "content": "a city"},
            ],
            "tools": [{"tool_name": "get_weather", "description": "Weather",
                       "parameters": {"city": {"param_type": "str"}}},
                      {"tool_name": "brave_search"}],
            "tool_choice": "required",
            "sampling_params": {"max_tokens": 10},
        }));
        let body = converse_body(&req, true).unwrap();
        assert_eq!(body["system"], json!([{"text": "be brief"}]));
        assert_eq!(body["inferenceConfig"], json!({"maxTokens": 10, "temperature": 0.0}));
        let m = &body["messages"];
        assert_eq!(
            m[0],
            json!({"role": "user", "content": [{"text": "weather in Paris?"}, {"text": "\n\nit is spring"}]})
        );
        assert_eq!(
            m[1]["content"],
            json!([{"toolUse": {"toolUseId": "c1", "name": "get_weather", "input": {"city": "Paris"}}},
                   {"toolUse": {"toolUseId": "c2", "name": "brave_search", "input": {"query": "paris"}}}])
        );
        assert_eq!(m[2]["role"], "user", "both tool results go in one user message");
        assert_eq!(
            m[2]["content"][0],
            json!({"toolResult": {"toolUseId": "c1", "content": [{"text": "sunny"}], "status": "success"}})
        );
        assert_eq!(m[2]["content"][1]["toolResult"]["toolUseId"], "c2");
        assert_eq!(m.as_array().unwrap().len(), 3);
        let tools = &body["toolConfig"];
        assert_eq!(tools["toolChoice"], json!({"any": {}}));
        assert_eq!(
            tools["tools"][0],
            json!({"toolSpec": {"name": "get_weather", "description": "Weather", "inputSchema": {"json": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}})
        );
        assert_eq!(tools["tools"][1]["toolSpec"]["inputSchema"]["json"]["required"], json!(["query"]));
        let streamed = converse_body(&req, false).unwrap();
        assert!(streamed.get("toolConfig").is_none());
        let auto = chat(json!({"model": "m", "messages": [], "tools": [{"tool_name": "x"}]}));
        assert!(converse_body(&auto, true).unwrap()["toolConfig"].get("toolChoice").is_none());
    }

    #[test]
    fn images_travel_as_bytes_only() {
        let req = chat(json!({"model": "m", "messages": [{"role": "user", "content": [
            "what is", {"image": {"uri": "data:image/jpg;base64,aGk="}}, "this"]}]}));
        assert_eq!(
            converse_body(&req, false).unwrap()["messages"][0]["content"],
            json!([{"text": "what is"}, {"image": {"format": "jpeg", "source": {"bytes": "aGk="}}}, {"text": "this"}])
        );
        let req = chat(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"image": {"uri": "https://x.test/cat.png"}}]}]}));
        let e = converse_body(&req, false).unwrap_err().to_string();
        assert!(e.contains("messages[0].content[0]") && e.contains("data:"), "{e}");
        let req = chat(json!({"model": "m", "messages": [{"role": "system", "content": {"image": {"uri": "x"}}}]}));
        assert!(converse_body(&req, false).unwrap_err().to_string().contains("messages[0].content"));
    }

    #[test]
    fn answers_and_stop_reasons() {
        let answer: ConverseAnswer = serde_json::from_value(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Let me look."},
                {"toolUse": {"toolUseId": "t1", "name": "brave_search", "input": {"query": "rust"}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 1}}))
        .unwrap();
        let msg = chat_response(answer).unwrap().completion_message;
        assert_eq!(msg.content, InterleavedTextMedia::Text("Let me look.".into()));
        assert_eq!(msg.stop_reason, StopReason::EndOfMessage);
        assert_eq!(msg.tool_calls[0].tool_name, ToolName::Builtin(BuiltinTool::BraveSearch));
        assert_eq!((msg.tool_calls[0].call_id.as_str(), &msg.tool_calls[0].arguments["query"]), ("t1", &json!("rust")));
        assert_eq!(stop_reason(Some("max_tokens"), false), StopReason::OutOfTokens);
        assert_eq!(stop_reason(Some("end_turn"), false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(Some("guardrail_intervened"), false), StopReason::EndOfTurn);
        assert_eq!(stop_reason(Some("end_turn"), true), StopReason::EndOfMessage);
        assert!(tool_call("x", "f", &json!([1])).is_err());
        assert!(chat_response(serde_json::from_value(json!({"stopReason": "end_turn"})).unwrap()).is_err());
    }

    #[test]
    fn llama_completion_body_and_answer() {
        let req: CompletionRequest = serde_json::from_value(json!({"model": "m", "content": "Once upon",
            "sampling_params": {"strategy": "top_p", "temperature": 0.5, "top_p": 0.9, "max_tokens": 20}}))
        .unwrap();
        assert_eq!(
            invoke_body(&req).unwrap(),
            json!({"prompt": "<|begin_of_text|>Once upon", "max_gen_len": 20, "temperature": 0.5, "top_p": 0.9})
        );
        let answer = LlamaGeneration { generation: Some(" a time".into()), stop_reason: Some("length".into()) };
        let r = completion_response(answer);
        assert_eq!(r.completion_message.stop_reason, StopReason::OutOfTokens);
        assert_eq!(llama_stop_reason(Some("stop")), StopReason::EndOfTurn);
        let media: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "content": {"image": {"uri": "x"}}})).unwrap();
        assert!(invoke_body(&media).unwrap_err().to_string().contains("`content`"));
    }
}

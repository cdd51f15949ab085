//! Llama Stack answers written as `OpenAI`'s: chat completions and their chunks, text
//! completions, embedding lists (as floats or base64), and the model list.

use serde_json::{Map, Value, json};

use crate::types::common::{CompletionMessage, StopReason, TokenLogProbs, ToolCall};
use crate::types::inference::{
    ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk, CompletionResponseStreamChunk,
    EventDelta, ToolCallDeltaContent, ToolCallParseStatus,
};

/// What every answer of one request shares: its id, creation time and model.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub id: String,
    pub created: i64,
    pub model: String,
}

impl Head {
    pub(super) fn new(prefix: &str, model: &str) -> Self {
        Self {
            id: format!("{prefix}-{}", uuid::Uuid::new_v4()),
            created: chrono::Utc::now().timestamp(),
            model: model.to_owned(),
        }
    }

    fn object(&self, object: &str, choices: &Value) -> Value {
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }
}

/// `OpenAI`'s `finish_reason` for a stop reason.
pub(super) fn finish_reason(stop: StopReason, called_tool: bool) -> &'static str {
    match stop {
        StopReason::EndOfMessage if called_tool => "tool_calls",
        StopReason::OutOfTokens => "length",
        StopReason::EndOfTurn | StopReason::EndOfMessage => "stop",
    }
}

/// Chat logprobs: one entry per token. Providers put the chosen token first in each map; the
/// map as a whole is the candidates.
fn chat_logprobs(scores: Option<&[TokenLogProbs]>) -> Value {
    let Some(scores) = scores else { return Value::Null };
    let entry = |token: &str, lp: f64| json!({"token": token, "logprob": lp, "bytes": token.as_bytes()});
    let content: Vec<Value> = scores
        .iter()
        .filter_map(|t| {
            let (token, lp) = t.logprobs_by_token.first()?;
            let mut e = entry(token, *lp);
            let top: Vec<Value> = t.logprobs_by_token.iter().map(|(tok, lp)| entry(tok, *lp)).collect();
            e["top_logprobs"] = json!(top);
            Some(e)
        })
        .collect();
    json!({"content": content})
}

/// Completion logprobs in `OpenAI`'s older shape: the chosen tokens, their scores, the
/// candidates, and where each token starts in the text (from `offset` on).
fn completion_logprobs(scores: Option<&[TokenLogProbs]>, mut offset: usize) -> Value {
    let Some(scores) = scores else { return Value::Null };
    let (mut tokens, mut token_logprobs, mut top, mut offsets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in scores {
        let Some((token, lp)) = t.logprobs_by_token.first() else { continue };
        tokens.push(json!(token));
        token_logprobs.push(json!(lp));
        top.push(json!(t.logprobs_by_token));
        offsets.push(json!(offset));
        offset += token.chars().count();
    }
    json!({"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets})
}

fn tool_call(call: &ToolCall) -> Value {
    json!({
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.tool_name.as_str(), "arguments": Value::Object(call.arguments.clone()).to_string()},
    })
}

/// A whole chat completion.
pub(super) fn chat_completion(head: &Head, m: &CompletionMessage, logprobs: Option<&[TokenLogProbs]>) -> Value {
    let text = m.content.as_text(" ");
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    // OpenAI's clients expect `null` content beside tool calls, not an empty string.
    let content = if text.is_empty() && !m.tool_calls.is_empty() { Value::Null } else { json!(text) };
    message.insert("content".into(), content);
    if !m.tool_calls.is_empty() {
        message.insert("tool_calls".into(), m.tool_calls.iter().map(tool_call).collect());
    }
    let choice = json!({
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(m.stop_reason, !m.tool_calls.is_empty()),
        "logprobs": chat_logprobs(logprobs),
    });
    head.object("chat.completion", &json!([choice]))
}

/// Turns a stream of chat events into `chat.completion.chunk` objects.
pub(super) struct ChatChunker {
    head: Head,
    sent_role: bool,
    calls: usize,
}

impl ChatChunker {
    pub(super) fn new(head: Head) -> Self {
        Self { head, sent_role: false, calls: 0 }
    }

    fn chunk(&mut self, mut delta: Map<String, Value>, finish: Option<&str>, logprobs: Value) -> Value {
        if !self.sent_role {
            delta.insert("role".into(), json!("assistant"));
            self.sent_role = true;
        }
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        choice["logprobs"] = logprobs;
        self.head.object("chat.completion.chunk", &json!([choice]))
    }

    /// The chunk for one event, or `None` for an event with nothing to tell: a tool call still
    /// being parsed goes out only once whole.
    pub(super) fn event(&mut self, c: &ChatCompletionResponseStreamChunk) -> Option<Value> {
        let mut delta = Map::new();
        match &c.event.delta {
            EventDelta::Text(t) if !t.is_empty() => {
                delta.insert("content".into(), json!(t));
            }
            EventDelta::Text(_) => {}
            EventDelta::ToolCall(d) => match (&d.content, d.parse_status) {
                (ToolCallDeltaContent::Call(call), ToolCallParseStatus::Success) => {
                    let mut v = tool_call(call);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("index".into(), json!(self.calls));
                    }
                    self.calls += 1;
                    delta.insert("tool_calls".into(), json!([v]));
                }
                _ => return None,
            },
        }
        let logprobs = chat_logprobs(c.event.logprobs.as_deref());
        match c.event.event_type {
            Event::Start => {
                delta.entry("content").or_insert_with(|| json!(""));
                Some(self.chunk(delta, None, logprobs))
            }
            Event::Progress if delta.is_empty() => None,
            Event::Progress => Some(self.chunk(delta, None, logprobs)),
            Event::Complete => {
                let stop = c.event.stop_reason.unwrap_or(StopReason::EndOfTurn);
                Some(self.chunk(delta, Some(finish_reason(stop, self.calls > 0)), logprobs))
            }
        }
    }
}

/// A whole text completion.
pub(super) fn completion(head: &Head, m: &CompletionMessage, logprobs: Option<&[TokenLogProbs]>) -> Value {
    let choice = json!({
        "index": 0,
        "text": m.content.as_text(" "),
        "finish_reason": finish_reason(m.stop_reason, false),
        "logprobs": completion_logprobs(logprobs, 0),
    });
    head.object("text_completion", &json!([choice]))
}

/// One streamed text completion chunk (`OpenAI` names them `text_completion` too); `offset` is
/// where its text starts in the whole answer.
pub(super) fn completion_chunk(head: &Head, c: &CompletionResponseStreamChunk, offset: usize) -> Value {
    let finish = c.stop_reason.map(|s| finish_reason(s, false));
    let logprobs = completion_logprobs(c.logprobs.as_deref(), offset);
    let choice = json!({"index": 0, "text": c.delta, "finish_reason": finish, "logprobs": logprobs});
    head.object("text_completion", &json!([choice]))
}

/// The embedding list. No token counts are known, so `usage` is left out.
pub(super) fn embeddings(model: &str, vectors: &[Vec<f64>], base64: bool) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 { json!(base64_f32(v)) } else { json!(v) };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model})
}

/// The vector as little-endian 32-bit floats in standard base64, `OpenAI`'s `base64` encoding.
fn base64_f32(v: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    #[allow(clippy::cast_possible_truncation, reason = "the encoding is 32-bit floats by definition")]
    let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [group[0], group.get(1).copied().unwrap_or(0), group.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `GET /v1/models`: one entry per served model id, owned by its provider. When a model was
/// made is not known, so `created` is 0.
pub(super) fn model_list(models: &[(String, String)]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|(id, provider)| json!({"id": id, "object": "model", "created": 0, "owned_by": provider}))
        .collect();
    json!({"object": "list", "data": data})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::{AssistantRole, InterleavedTextMedia, ToolName};
    use crate::types::inference::ToolCallDelta;

    fn head() -> Head {
        Head { id: "chatcmpl-1".into(), created: 7, model: "m".into() }
    }

    fn call() -> ToolCall {
        ToolCall {
            call_id: "c1".into(),
            tool_name: ToolName::from("get_weather"),
            arguments: json!({"city": "Rome"}).as_object().cloned().unwrap(),
        }
    }

    #[test]
    fn whole_answers() {
        let m = CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text(String::new()),
            stop_reason: StopReason::EndOfMessage,
            tool_calls: vec![call()],
        };
        let v = chat_completion(&head(), &m, None);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Rome\"}");
        let m = CompletionMessage {
            content: InterleavedTextMedia::Text("hi".into()),
            stop_reason: StopReason::OutOfTokens,
            tool_calls: vec![],
            ..m
        };
        assert_eq!(
            completion(&head(), &m, None)["choices"][0],
            json!({"index": 0, "text": "hi", "finish_reason": "length", "logprobs": null})
        );
    }

    #[test]
    fn logprobs_take_the_first_candidate_as_the_chosen_token() {
        let scores = vec![
            TokenLogProbs { logprobs_by_token: [("h".to_owned(), -0.5), ("x".to_owned(), -1.5)].into_iter().collect() },
            TokenLogProbs { logprobs_by_token: [("é".to_owned(), -0.25)].into_iter().collect() },
        ];
        let m = CompletionMessage {
            role: AssistantRole::Value,
            content: InterleavedTextMedia::Text("hé".into()),
            stop_reason: StopReason::EndOfTurn,
            tool_calls: vec![],
        };
        let chat = chat_completion(&head(), &m, Some(&scores));
        let content = &chat["choices"][0]["logprobs"]["content"];
        assert_eq!(content[0]["token"], "h");
        assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 2);
        assert_eq!(content[1]["bytes"], json!([0xc3, 0xa9]));
        let text = completion(&head(), &m, Some(&scores));
        assert_eq!(
            text["choices"][0]["logprobs"],
            json!({"tokens": ["h", "é"], "token_logprobs": [-0.5, -0.25],
                   "top_logprobs": [{"h": -0.5, "x": -1.5}, {"é": -0.25}], "text_offset": [0, 1]})
        );
        let chunk = CompletionResponseStreamChunk {
            delta: "é".into(),
            stop_reason: None,
            logprobs: Some(scores[1..].to_vec()),
        };
        assert_eq!(completion_chunk(&head(), &chunk, 1)["choices"][0]["logprobs"]["text_offset"], json!([1]));
    }

    #[test]
    fn chat_events_become_chunks() {
        let mut c = ChatChunker::new(head());
        let start = c.event(&ChatCompletionResponseStreamChunk::text(Event::Start, "")).unwrap();
        assert_eq!(start["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        let text = c.event(&ChatCompletionResponseStreamChunk::text(Event::Progress, "Hi")).unwrap();
        assert_eq!(text["choices"][0]["delta"], json!({"content": "Hi"}));
        assert!(c.event(&ChatCompletionResponseStreamChunk::text(Event::Progress, "")).is_none());
        let partial = ToolCallDelta {
            content: ToolCallDeltaContent::Text("{\"ci".into()),
            parse_status: ToolCallParseStatus::InProgress,
        };
        assert!(
            c.event(&ChatCompletionResponseStreamChunk::new(Event::Progress, EventDelta::ToolCall(partial), None))
                .is_none()
        );
        let whole =
            ToolCallDelta { content: ToolCallDeltaContent::Call(call()), parse_status: ToolCallParseStatus::Success };
        let v = c
            .event(&ChatCompletionResponseStreamChunk::new(
                Event::Progress,
                EventDelta::ToolCall(whole),
                Some(StopReason::EndOfMessage),
            ))
            .unwrap();
        assert_eq!(v["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
        assert_eq!(v["choices"][0]["delta"]["tool_calls"][0]["id"], "c1");
        let end = c
            .event(&ChatCompletionResponseStreamChunk::new(
                Event::Complete,
                EventDelta::Text(String::new()),
                Some(StopReason::EndOfMessage),
            ))
            .unwrap();
        assert_eq!(end["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(end["choices"][0]["delta"], json!({}));
        assert_eq!(end["object"], "chat.completion.chunk");
        assert_eq!(end["id"], "chatcmpl-1");
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        // 1.0f32 is 00 00 80 3f; 2.0f32 is 00 00 00 40.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
        let v = embeddings("m", &[vec![0.5]], false);
        assert_eq!(
            v,
            json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}], "model": "m"})
        );
    }
}

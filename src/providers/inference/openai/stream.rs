//! Streamed `OpenAI` answers turned into Llama Stack stream events. For chat: `start`, a
//! `progress` per text delta, then the tool calls (whose pieces arrive spread over many events
//! and are put together here), then `complete` with the stop reason.

use serde_json::Value;

use super::convert::stop_reason;
use super::logprobs;
use super::wire::{ChatStreamChunk, CompletionAnswer, DeltaToolCall};
use crate::error::Error;
use crate::providers::inference::chat_stream::{self, ChatReader, Events};
use crate::providers::inference::client::Origin;
use crate::providers::inference::http_util::function_call;
use crate::providers::inference::sse::{Sse, SseStream};
use crate::providers::inference::text::{self, Piece};
use crate::providers::inference::{ChatStream, CompletionStream};

const CHAT: &str = "/chat/completions";
const COMPLETIONS: &str = "/completions";
const CUT_SHORT: &str = "the stream ended before the server finished the answer";

/// A tool call being put together from its pieces.
#[derive(Debug, Default)]
struct PartialCall {
    index: Option<usize>,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Adds one piece to the calls. Pieces name their call by `index`; a server that leaves the
/// index out sends whole calls, so a piece with a new id starts a new call.
fn merge(calls: &mut Vec<PartialCall>, piece: DeltaToolCall) {
    let slot = match (piece.index, piece.id.as_deref()) {
        (Some(i), _) => calls.iter().position(|c| c.index == Some(i)),
        (None, Some(id)) => calls.iter().position(|c| c.id.as_deref() == Some(id)),
        (None, None) => calls.len().checked_sub(1),
    };
    let slot = slot.unwrap_or_else(|| {
        calls.push(PartialCall { index: piece.index, ..PartialCall::default() });
        calls.len() - 1
    });
    let call = &mut calls[slot];
    if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
        call.id = Some(id);
    }
    if let Some(f) = piece.function {
        if let Some(name) = f.name.filter(|n| !n.is_empty()) {
            call.name = name;
        }
        match f.arguments {
            Some(Value::String(s)) => call.arguments.push_str(&s),
            Some(Value::Null) | None => {}
            Some(other) => call.arguments.push_str(&other.to_string()),
        }
    }
}

/// Reads `/chat/completions` events.
struct OpenAiChat {
    calls: Vec<PartialCall>,
    origin: Origin,
}

impl OpenAiChat {
    /// Ends the answer; a call whose arguments are not a JSON object is reported as a failed
    /// parse carrying the raw text, as upstream reports it.
    fn finish(&mut self, finish_reason: Option<&str>, out: &mut Events) {
        let calls: Vec<PartialCall> = self.calls.drain(..).filter(|c| !c.name.is_empty()).collect();
        let reason = stop_reason(finish_reason, !calls.is_empty());
        let calls = calls
            .into_iter()
            .map(|c| {
                function_call(c.id, &c.name, &Value::String(c.arguments.clone()))
                    .map_err(|_| format!("{}({})", c.name, c.arguments))
            })
            .collect();
        out.finish(calls, reason);
    }
}

impl ChatReader for OpenAiChat {
    type Item = Sse;

    fn absorb(&mut self, event: Sse, out: &mut Events) {
        let data = match event {
            Sse::Data(data) => data,
            // `[DONE]` without a finish reason: the server is done all the same.
            Sse::Done => return self.finish(None, out),
        };
        let chunk: ChatStreamChunk = match serde_json::from_value(data) {
            Ok(c) => c,
            Err(e) => return out.fail(self.origin.bad_answer(CHAT, format!("an event that is not a chat chunk: {e}"))),
        };
        // Only one choice is asked for; a usage-only event has none.
        let Some(choice) = chunk.choices.into_iter().next() else { return };
        if let Some(delta) = choice.delta {
            let scores = choice.logprobs.as_ref().map(logprobs::from_chat).and_then(logprobs::non_empty);
            out.text(delta.content.unwrap_or_default(), scores);
            for piece in delta.tool_calls.unwrap_or_default() {
                merge(&mut self.calls, piece);
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.finish(Some(&reason), out);
        }
    }

    fn ended_early(&self) -> Error {
        self.origin.bad_answer(CHAT, CUT_SHORT)
    }
}

/// Chat events for a streamed `/chat/completions`.
pub(super) fn chat_events(events: SseStream, origin: Origin) -> ChatStream {
    chat_stream::chat_events(events, OpenAiChat { calls: Vec::new(), origin })
}

/// The pieces of a streamed `/completions` answer: each event's text (with its logprobs), then
/// the end at the first finish reason or `[DONE]`.
pub(super) fn completion_pieces(events: SseStream, origin: Origin, path: &'static str) -> text::Pieces {
    let reader = origin.clone();
    let read = move |event: Sse| {
        let data = match event {
            Sse::Done => return Ok(vec![Piece::End(stop_reason(None, false))]),
            Sse::Data(data) => data,
        };
        let answer: CompletionAnswer = serde_json::from_value(data)
            .map_err(|e| reader.bad_answer(path, format!("an event that is not a completion chunk: {e}")))?;
        let Some(choice) = answer.choices.into_iter().next() else { return Ok(Vec::new()) };
        let scores = choice.logprobs.as_ref().map(logprobs::from_completion).and_then(logprobs::non_empty);
        let mut pieces: Vec<Piece> = text::text_piece(choice.text.unwrap_or_default(), scores).into_iter().collect();
        if let Some(reason) = choice.finish_reason {
            pieces.push(Piece::End(stop_reason(Some(&reason), false)));
        }
        Ok(pieces)
    };
    text::pieces_of(events, read, move || origin.bad_answer(path, CUT_SHORT))
}

/// Completion chunks for a streamed `/completions`: one per text delta, and a last one with the
/// stop reason.
pub(super) fn completion_chunks(events: SseStream, origin: Origin) -> CompletionStream {
    text::completion_chunks(completion_pieces(events, origin, COMPLETIONS))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use futures::StreamExt;
    use futures::stream;

    use super::*;
    use crate::error::Error;
    use crate::providers::inference::chat_stream::kinds;
    use crate::types::common::StopReason;
    use crate::types::inference::{EventDelta, ToolCallDeltaContent};

    fn events(items: Vec<Sse>) -> SseStream {
        stream::iter(items.into_iter().map(Ok)).boxed()
    }

    fn data(v: Value) -> Sse {
        Sse::Data(v)
    }

    #[tokio::test]
    async fn text_then_tool_calls_assembled_from_pieces() {
        let piece = |v: Value| data(json!({"choices": [{"index": 0, "delta": v, "finish_reason": null}]}));
        let input = vec![
            piece(json!({"role": "assistant", "content": ""})),
            piece(json!({"content": "Let me check."})),
            piece(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]})),
            piece(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]})),
            piece(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "brave_search", "arguments": "{\"query\":\"x\"}"}}]}),
            ),
            piece(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})),
            data(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})),
            data(json!({"choices": [], "usage": {"total_tokens": 3}})),
            Sse::Done,
        ];
        let got: Vec<_> = chat_events(events(input), Origin::for_tests()).collect().await;
        assert_eq!(
            kinds(&got),
            ["start:", "progress:Let me check.", "progress:tool:success", "progress:tool:success", "complete:"]
        );
        let EventDelta::ToolCall(d) = &got[2].as_ref().unwrap().event.delta else { unreachable!() };
        let ToolCallDeltaContent::Call(call) = &d.content else { unreachable!() };
        assert_eq!((call.call_id.as_str(), call.tool_name.as_str()), ("call_a", "get_weather"));
        assert_eq!(call.arguments["city"], "Paris");
        assert_eq!(got.last().unwrap().as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfMessage));
    }

    #[tokio::test]
    async fn whole_calls_without_index_and_bad_arguments() {
        let input = vec![
            data(
                json!({"choices": [{"delta": {"tool_calls": [{"id": "1", "function": {"name": "f", "arguments": {"a": 1}}}]}}]}),
            ),
            data(
                json!({"choices": [{"delta": {"tool_calls": [{"id": "2", "function": {"name": "g", "arguments": "not json"}}]}}]}),
            ),
            Sse::Done,
        ];
        let got: Vec<_> = chat_events(events(input), Origin::for_tests()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:tool:success", "progress:tool:failure", "complete:"]);
        let EventDelta::ToolCall(d) = &got[2].as_ref().unwrap().event.delta else { unreachable!() };
        assert_eq!(d.content, ToolCallDeltaContent::Text("g(not json)".into()));
    }

    #[tokio::test]
    async fn stop_reasons_and_early_ends() {
        let input = vec![
            data(json!({"choices": [{"delta": {"content": "a"}}]})),
            data(json!({"choices": [{"delta": {"content": "b"}, "finish_reason": "length"}]})),
            data(json!({"choices": [{"delta": {"content": "ignored"}}]})),
        ];
        let got: Vec<_> = chat_events(events(input), Origin::for_tests()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:a", "progress:b", "complete:"]);
        assert_eq!(got[3].as_ref().unwrap().event.stop_reason, Some(StopReason::OutOfTokens));

        let cut = vec![data(json!({"choices": [{"delta": {"content": "Hi"}}]}))];
        let got: Vec<_> = chat_events(events(cut), Origin::for_tests()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:Hi", "error:502"]);
        let failing = stream::iter(vec![Err(Error::Timeout("slow".into()))]).boxed();
        let got: Vec<_> = chat_events(failing, Origin::for_tests()).collect().await;
        assert_eq!(kinds(&got), ["start:", "error:504"]);
    }

    #[tokio::test]
    async fn completion_chunks_end_with_the_stop_reason() {
        let input = vec![
            data(json!({"choices": [{"text": "a", "finish_reason": null}]})),
            data(json!({"choices": [{"text": "", "finish_reason": null}]})),
            data(json!({"choices": [{"text": "b", "finish_reason": null}]})),
            data(json!({"choices": [{"text": "", "finish_reason": "stop"}]})),
            Sse::Done,
        ];
        let got: Vec<_> = completion_chunks(events(input), Origin::for_tests()).collect().await;
        let got: Vec<_> = got.into_iter().map(|c| c.map(|c| (c.delta, c.stop_reason)).unwrap()).collect();
        assert_eq!(got, [("a".into(), None), ("b".into(), None), (String::new(), Some(StopReason::EndOfTurn))]);
        let got: Vec<_> = completion_chunks(events(vec![Sse::Done]), Origin::for_tests()).collect().await;
        assert_eq!(got.len(), 1);
        let got: Vec<_> = completion_chunks(events(vec![]), Origin::for_tests()).collect().await;
        assert!(matches!(got.as_slice(), [Err(e)] if e.status_code() == 502));
    }
}

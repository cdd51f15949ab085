//! Streamed `OpenAI` answers turned into Llama Stack stream events. For chat: `start`, a
//! `progress` per text delta, then the tool calls (whose pieces arrive spread over many events
//! and are put together here), then `complete` with the stop reason.

use std::collections::VecDeque;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::convert::{stop_reason, tool_call};
use super::logprobs;
use super::wire::{ChatStreamChunk, CompletionAnswer, DeltaToolCall};
use crate::error::Result;
use crate::providers::inference::client::Origin;
use crate::providers::inference::sse::{Sse, SseStream};
use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::inference::{
    ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk, CompletionResponseStreamChunk,
    EventDelta, ToolCallDelta, ToolCallDeltaContent, ToolCallParseStatus,
};

const CHAT: &str = "/chat/completions";

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

/// The event for a finished call: the parsed call, or (when the model produced arguments that
/// are not a JSON object) a failed parse carrying the raw text, as upstream reports it.
fn call_event(call: PartialCall, reason: crate::types::common::StopReason) -> ChatCompletionResponseStreamChunk {
    let delta = match tool_call(call.id, &call.name, &Value::String(call.arguments.clone())) {
        Ok(c) => ToolCallDelta { content: ToolCallDeltaContent::Call(c), parse_status: ToolCallParseStatus::Success },
        Err(_) => ToolCallDelta {
            content: ToolCallDeltaContent::Text(format!("{}({})", call.name, call.arguments)),
            parse_status: ToolCallParseStatus::Failure,
        },
    };
    ChatCompletionResponseStreamChunk::new(Event::Progress, EventDelta::ToolCall(delta), Some(reason))
}

struct ChatState {
    events: SseStream,
    out: VecDeque<Result<ChatCompletionResponseStreamChunk>>,
    calls: Vec<PartialCall>,
    finished: bool,
    origin: Origin,
}

impl ChatState {
    fn absorb(&mut self, data: Value) {
        let chunk: ChatStreamChunk = match serde_json::from_value(data) {
            Ok(c) => c,
            Err(e) => {
                self.out
                    .push_back(Err(self.origin.bad_answer(CHAT, format!("an event that is not a chat chunk: {e}"))));
                self.finished = true;
                return;
            }
        };
        // Only one choice is asked for; a usage-only event has none.
        let Some(choice) = chunk.choices.into_iter().next() else { return };
        let scores = choice.logprobs.as_ref().map(logprobs::from_chat).and_then(logprobs::non_empty);
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                let mut chunk = ChatCompletionResponseStreamChunk::text(Event::Progress, text);
                chunk.event.logprobs = scores;
                self.out.push_back(Ok(chunk));
            }
            for piece in delta.tool_calls.unwrap_or_default() {
                merge(&mut self.calls, piece);
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.finish(Some(&reason));
        }
    }

    /// Calls go out once the answer is complete, after any text, each with the stop reason,
    /// then `complete`.
    fn finish(&mut self, finish_reason: Option<&str>) {
        let calls: Vec<PartialCall> = self.calls.drain(..).filter(|c| !c.name.is_empty()).collect();
        let reason = stop_reason(finish_reason, !calls.is_empty());
        for call in calls {
            self.out.push_back(Ok(call_event(call, reason)));
        }
        self.out.push_back(Ok(ChatCompletionResponseStreamChunk::new(
            Event::Complete,
            EventDelta::Text(String::new()),
            Some(reason),
        )));
        self.finished = true;
    }
}

/// Chat events for a streamed `/chat/completions`. Reading stops at the finish reason,
/// `[DONE]`, the first error, or when the caller drops the stream (closing the connection).
pub(super) fn chat_events(events: SseStream, origin: Origin) -> ChatStream {
    let start = ChatCompletionResponseStreamChunk::text(Event::Start, "");
    let state = ChatState { events, out: VecDeque::new(), calls: Vec::new(), finished: false, origin };
    let rest = stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.out.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            match st.events.next().await {
                Some(Ok(Sse::Data(data))) => st.absorb(data),
                // `[DONE]` without a finish reason: the server is done all the same.
                Some(Ok(Sse::Done)) => st.finish(None),
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.finished = true;
                    let e = st.origin.bad_answer(CHAT, "the stream ended before the server finished the answer");
                    return Some((Err(e), st));
                }
            }
        }
    });
    stream::once(async { Ok(start) }).chain(rest).boxed()
}

/// Completion chunks for a streamed `/completions`: one per text delta, and a last one with the
/// stop reason.
pub(super) fn completion_chunks(events: SseStream, origin: Origin) -> CompletionStream {
    const PATH: &str = "/completions";
    stream::unfold((events, false), move |(mut events, finished)| {
        let origin = origin.clone();
        async move {
            if finished {
                return None;
            }
            loop {
                let data = match events.next().await {
                    Some(Ok(Sse::Data(data))) => data,
                    Some(Ok(Sse::Done)) => {
                        let last = CompletionResponseStreamChunk {
                            delta: String::new(),
                            stop_reason: Some(stop_reason(None, false)),
                            logprobs: None,
                        };
                        return Some((Ok(last), (events, true)));
                    }
                    Some(Err(e)) => return Some((Err(e), (events, true))),
                    None => {
                        let e = origin.bad_answer(PATH, "the stream ended before the server finished the answer");
                        return Some((Err(e), (events, true)));
                    }
                };
                let answer: CompletionAnswer = match serde_json::from_value(data) {
                    Ok(a) => a,
                    Err(e) => {
                        let e = origin.bad_answer(PATH, format!("an event that is not a completion chunk: {e}"));
                        return Some((Err(e), (events, true)));
                    }
                };
                let Some(choice) = answer.choices.into_iter().next() else { continue };
                let delta = choice.text.unwrap_or_default();
                let scores = choice.logprobs.as_ref().map(logprobs::from_completion).and_then(logprobs::non_empty);
                if let Some(reason) = choice.finish_reason {
                    let last = CompletionResponseStreamChunk {
                        delta,
                        stop_reason: Some(stop_reason(Some(&reason), false)),
                        logprobs: scores,
                    };
                    return Some((Ok(last), (events, true)));
                }
                if !delta.is_empty() {
                    let item = CompletionResponseStreamChunk { delta, stop_reason: None, logprobs: scores };
                    return Some((Ok(item), (events, false)));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::Error;
    use crate::types::common::StopReason;

    fn events(items: Vec<Sse>) -> SseStream {
        stream::iter(items.into_iter().map(Ok)).boxed()
    }

    fn data(v: Value) -> Sse {
        Sse::Data(v)
    }

    fn kinds(events: &[Result<ChatCompletionResponseStreamChunk>]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Ok(c) => match &c.event.delta {
                    EventDelta::Text(t) => format!("{}:{t}", c.event.event_type),
                    EventDelta::ToolCall(d) => format!("{}:tool:{}", c.event.event_type, d.parse_status),
                },
                Err(e) => format!("error:{}", e.status_code()),
            })
            .collect()
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

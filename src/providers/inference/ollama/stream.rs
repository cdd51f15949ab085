//! Ollama's streamed chunks turned into Llama Stack stream events: for chat, `start`, then
//! `progress` per text delta, then the tool calls, then `complete` with the stop reason.

use std::collections::VecDeque;

use futures::stream::{self, BoxStream, StreamExt};

use super::convert::{stop_reason, tool_call};
use super::wire::{ChatChunk, GenerateChunk};
use crate::error::Result;
use crate::providers::inference::client::Origin;
use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::common::ToolCall;
use crate::types::inference::{
    ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk, CompletionResponseStreamChunk,
    EventDelta, ToolCallDelta, ToolCallDeltaContent, ToolCallParseStatus,
};

struct ChatState {
    lines: BoxStream<'static, Result<ChatChunk>>,
    out: VecDeque<Result<ChatCompletionResponseStreamChunk>>,
    calls: Vec<ToolCall>,
    finished: bool,
    origin: Origin,
}

impl ChatState {
    fn absorb(&mut self, chunk: ChatChunk) {
        if let Some(m) = chunk.message {
            if let Some(text) = m.content.filter(|t| !t.is_empty()) {
                self.out.push_back(Ok(ChatCompletionResponseStreamChunk::text(Event::Progress, text)));
            }
            for call in m.tool_calls.unwrap_or_default() {
                match tool_call(call) {
                    Ok(c) => self.calls.push(c),
                    Err(msg) => {
                        self.out.push_back(Err(self.origin.bad_answer("/api/chat", msg)));
                        self.finished = true;
                        return;
                    }
                }
            }
        }
        if chunk.done {
            let reason = stop_reason(chunk.done_reason.as_deref(), !self.calls.is_empty());
            // Calls go out once the answer is complete, after any text, each with the stop
            // reason, as upstream orders them.
            for call in self.calls.drain(..) {
                let delta = ToolCallDelta {
                    content: ToolCallDeltaContent::Call(call),
                    parse_status: ToolCallParseStatus::Success,
                };
                self.out.push_back(Ok(ChatCompletionResponseStreamChunk::new(
                    Event::Progress,
                    EventDelta::ToolCall(delta),
                    Some(reason),
                )));
            }
            self.out.push_back(Ok(ChatCompletionResponseStreamChunk::new(
                Event::Complete,
                EventDelta::Text(String::new()),
                Some(reason),
            )));
            self.finished = true;
        }
    }
}

/// Chat events for an `/api/chat` stream. Reading stops at Ollama's `done`, the first error, or
/// when the caller drops the stream (which drops the HTTP response with it).
pub(super) fn chat_events(lines: BoxStream<'static, Result<ChatChunk>>, origin: Origin) -> ChatStream {
    let start = ChatCompletionResponseStreamChunk::text(Event::Start, "");
    let state = ChatState { lines, out: VecDeque::new(), calls: Vec::new(), finished: false, origin };
    let rest = stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.out.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            match st.lines.next().await {
                Some(Ok(chunk)) => st.absorb(chunk),
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.finished = true;
                    let e = st.origin.bad_answer("/api/chat", "the stream ended before Ollama said it was done");
                    return Some((Err(e), st));
                }
            }
        }
    });
    stream::once(async { Ok(start) }).chain(rest).boxed()
}

/// Completion chunks for an `/api/generate` stream: one per text delta, and a last one with the
/// stop reason.
pub(super) fn completion_chunks(lines: BoxStream<'static, Result<GenerateChunk>>, origin: Origin) -> CompletionStream {
    stream::unfold((lines, false), move |(mut lines, finished)| {
        let origin = origin.clone();
        async move {
            if finished {
                return None;
            }
            loop {
                match lines.next().await {
                    Some(Ok(chunk)) if chunk.done => {
                        let reason = stop_reason(chunk.done_reason.as_deref(), false);
                        let last = CompletionResponseStreamChunk {
                            delta: chunk.response.unwrap_or_default(),
                            stop_reason: Some(reason),
                            logprobs: None,
                        };
                        return Some((Ok(last), (lines, true)));
                    }
                    Some(Ok(chunk)) => {
                        if let Some(delta) = chunk.response.filter(|t| !t.is_empty()) {
                            let item = CompletionResponseStreamChunk { delta, stop_reason: None, logprobs: None };
                            return Some((Ok(item), (lines, false)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (lines, true))),
                    None => {
                        let e = origin.bad_answer("/api/generate", "the stream ended before Ollama said it was done");
                        return Some((Err(e), (lines, true)));
                    }
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::error::Error;
    use crate::types::common::StopReason;

    fn lines<T: serde::de::DeserializeOwned + Send + 'static>(items: Vec<Value>) -> BoxStream<'static, Result<T>> {
        stream::iter(items.into_iter().map(|v| Ok(serde_json::from_value(v).unwrap()))).boxed()
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
    async fn chat_sequence_with_text_and_tool_call() {
        let input = vec![
            json!({"message": {"role": "assistant", "content": "Let me"}, "done": false}),
            json!({"message": {"role": "assistant", "content": " check."}, "done": false}),
            json!({"message": {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, "done": false}),
            json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}),
            json!({"message": {"role": "assistant", "content": "ignored"}, "done": false}),
        ];
        let events: Vec<_> = chat_events(lines(input), Origin::for_tests()).collect().await;
        assert_eq!(
            kinds(&events),
            ["start:", "progress:Let me", "progress: check.", "progress:tool:success", "complete:"]
        );
        let last = events.last().unwrap().as_ref().unwrap();
        assert_eq!(last.event.stop_reason, Some(StopReason::EndOfMessage));
    }

    #[tokio::test]
    async fn chat_stream_cut_short_ends_with_an_error() {
        let input = vec![json!({"message": {"content": "Hi"}, "done": false})];
        let events: Vec<_> = chat_events(lines(input), Origin::for_tests()).collect().await;
        assert_eq!(kinds(&events), ["start:", "progress:Hi", "error:502"]);
        let failing = stream::iter(vec![Err(Error::Timeout("slow".into()))]).boxed();
        let events: Vec<_> = chat_events(failing, Origin::for_tests()).collect().await;
        assert_eq!(kinds(&events), ["start:", "error:504"]);
    }

    #[tokio::test]
    async fn completion_chunks_end_with_the_stop_reason() {
        let input = vec![
            json!({"response": "a", "done": false}),
            json!({"response": "", "done": false}),
            json!({"response": "b", "done": false}),
            json!({"response": "", "done": true, "done_reason": "length"}),
        ];
        let got: Vec<_> = completion_chunks(lines(input), Origin::for_tests()).collect().await;
        let got: Vec<_> = got.into_iter().map(|c| c.map(|c| (c.delta, c.stop_reason)).unwrap()).collect();
        assert_eq!(got, [("a".into(), None), ("b".into(), None), (String::new(), Some(StopReason::OutOfTokens))]);
    }
}

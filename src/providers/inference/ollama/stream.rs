//! Ollama's streamed chunks turned into Llama Stack stream events: for chat, `start`, then
//! `progress` per text delta, then the tool calls, then `complete` with the stop reason.

use futures::stream::BoxStream;

use super::convert::stop_reason;
use super::wire::{ChatChunk, GenerateChunk};
use crate::error::{Error, Result};
use crate::providers::inference::chat_stream::{self, ChatReader, Events};
use crate::providers::inference::client::Origin;
use crate::providers::inference::text::{self, Piece};
use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::common::ToolCall;

const CUT_SHORT: &str = "the stream ended before Ollama said it was done";

/// Reads `/api/chat` lines. Ollama sends each tool call whole, so calls are kept until `done`.
struct OllamaChat {
    calls: Vec<ToolCall>,
    origin: Origin,
}

impl ChatReader for OllamaChat {
    type Item = ChatChunk;

    fn absorb(&mut self, chunk: ChatChunk, out: &mut Events) {
        if let Some(m) = chunk.message {
            out.text(m.content.unwrap_or_default(), None);
            for call in m.tool_calls.unwrap_or_default() {
                match call.parse() {
                    Ok(c) => self.calls.push(c),
                    Err(msg) => return out.fail(self.origin.bad_answer("/api/chat", msg)),
                }
            }
        }
        if chunk.done {
            let reason = stop_reason(chunk.done_reason.as_deref(), !self.calls.is_empty());
            out.finish(self.calls.drain(..).map(Ok).collect(), reason);
        }
    }

    fn ended_early(&self) -> Error {
        self.origin.bad_answer("/api/chat", CUT_SHORT)
    }
}

/// Chat events for an `/api/chat` stream.
pub(super) fn chat_events(lines: BoxStream<'static, Result<ChatChunk>>, origin: Origin) -> ChatStream {
    chat_stream::chat_events(lines, OllamaChat { calls: Vec::new(), origin })
}

/// Completion chunks for an `/api/generate` stream: one per text delta, and a last one with the
/// stop reason.
pub(super) fn completion_chunks(lines: BoxStream<'static, Result<GenerateChunk>>, origin: Origin) -> CompletionStream {
    let read = |chunk: GenerateChunk| {
        let mut pieces: Vec<Piece> = text::text_piece(chunk.response.unwrap_or_default(), None).into_iter().collect();
        if chunk.done {
            pieces.push(Piece::End(stop_reason(chunk.done_reason.as_deref(), false)));
        }
        Ok(pieces)
    };
    text::completion_chunks(text::pieces_of(lines, read, move || origin.bad_answer("/api/generate", CUT_SHORT)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use futures::StreamExt;
    use futures::stream;
    use serde_json::{Value, json};

    use super::*;
    use crate::providers::inference::chat_stream::kinds;
    use crate::types::common::StopReason;

    fn lines<T: serde::de::DeserializeOwned + Send + 'static>(items: Vec<Value>) -> BoxStream<'static, Result<T>> {
        stream::iter(items.into_iter().map(|v| Ok(serde_json::from_value(v).unwrap()))).boxed()
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

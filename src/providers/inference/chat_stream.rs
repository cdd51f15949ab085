//! Chat streams from backends that answer in structured pieces (Ollama's chat lines, `OpenAI`'s
//! chat chunks, Bedrock's `ConverseStream` events). Each provider says how one piece of its
//! backend's stream reads; the event order is kept here, once: `start`, a `progress` per text
//! delta, then each tool call whole with the stop reason, then `complete`. Reading stops at the
//! end of the answer, at the first error, or when the caller drops the stream (which closes the
//! connection).

use std::collections::VecDeque;

use futures::stream::{self, BoxStream, StreamExt};

use super::ChatStream;
use crate::error::{Error, Result};
use crate::types::common::{StopReason, TokenLogProbs, ToolCall};
use crate::types::inference::{
    ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk, EventDelta, ToolCallDelta,
    ToolCallDeltaContent, ToolCallParseStatus,
};

/// The events a reader has completed, waiting to be sent.
#[derive(Debug, Default)]
pub struct Events {
    queue: VecDeque<Result<ChatCompletionResponseStreamChunk>>,
    finished: bool,
}

impl Events {
    /// A text delta (empty ones are dropped), with the scores of its tokens if there are any.
    pub fn text(&mut self, text: String, logprobs: Option<Vec<TokenLogProbs>>) {
        if text.is_empty() {
            return;
        }
        let mut chunk = ChatCompletionResponseStreamChunk::text(Event::Progress, text);
        chunk.event.logprobs = logprobs;
        self.queue.push_back(Ok(chunk));
    }

    /// A tool call as it streams in (`started`, `in_progress`).
    pub fn partial_call(&mut self, text: String, status: ToolCallParseStatus) {
        let delta = ToolCallDelta { content: ToolCallDeltaContent::Text(text), parse_status: status };
        self.queue.push_back(Ok(ChatCompletionResponseStreamChunk::new(
            Event::Progress,
            EventDelta::ToolCall(delta),
            None,
        )));
    }

    /// Ends the answer: each call whole (a call that did not parse is reported as a failure
    /// carrying its raw text, as upstream does), each with the stop reason, then `complete`.
    pub fn finish(&mut self, calls: Vec<Result<ToolCall, String>>, reason: StopReason) {
        for call in calls {
            let delta = match call {
                Ok(c) => {
                    ToolCallDelta { content: ToolCallDeltaContent::Call(c), parse_status: ToolCallParseStatus::Success }
                }
                Err(raw) => ToolCallDelta {
                    content: ToolCallDeltaContent::Text(raw),
                    parse_status: ToolCallParseStatus::Failure,
                },
            };
            self.queue.push_back(Ok(ChatCompletionResponseStreamChunk::new(
                Event::Progress,
                EventDelta::ToolCall(delta),
                Some(reason),
            )));
        }
        self.queue.push_back(Ok(ChatCompletionResponseStreamChunk::new(
            Event::Complete,
            EventDelta::Text(String::new()),
            Some(reason),
        )));
        self.finished = true;
    }

    /// Ends the stream with an error.
    pub fn fail(&mut self, e: Error) {
        self.queue.push_back(Err(e));
        self.finished = true;
    }
}

/// How one backend's stream reads.
pub trait ChatReader: Send + 'static {
    type Item: Send + 'static;

    /// Reads one piece of the backend's stream, adding the events it completes.
    fn absorb(&mut self, item: Self::Item, out: &mut Events);

    /// The error for a stream that ended before the backend finished its answer.
    fn ended_early(&self) -> Error;
}

/// Chat events for a backend's stream of items.
pub fn chat_events<R: ChatReader>(items: BoxStream<'static, Result<R::Item>>, reader: R) -> ChatStream {
    let start = ChatCompletionResponseStreamChunk::text(Event::Start, "");
    let rest = stream::unfold((items, reader, Events::default()), |(mut items, mut reader, mut out)| async move {
        loop {
            if let Some(event) = out.queue.pop_front() {
                return Some((event, (items, reader, out)));
            }
            if out.finished {
                return None;
            }
            match items.next().await {
                Some(Ok(item)) => reader.absorb(item, &mut out),
                Some(Err(e)) => out.fail(e),
                None => out.fail(reader.ended_early()),
            }
        }
    });
    stream::once(async { Ok(start) }).chain(rest).boxed()
}

/// A stream's events in short (`progress:text`, `progress:tool:<status>`, `error:<status>`),
/// for tests that check an order.
#[cfg(test)]
pub fn kinds(events: &[Result<ChatCompletionResponseStreamChunk>]) -> Vec<String> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::{JsonObject, ToolName};

    /// Items are (text, done): done finishes with one call.
    struct Reader;

    impl ChatReader for Reader {
        type Item = (&'static str, bool);

        fn absorb(&mut self, (text, done): Self::Item, out: &mut Events) {
            out.text(text.to_owned(), None);
            if done {
                let call =
                    ToolCall { call_id: "c".into(), tool_name: ToolName::from("f"), arguments: JsonObject::new() };
                out.finish(vec![Ok(call), Err("g({oops".into())], StopReason::EndOfMessage);
            }
        }

        fn ended_early(&self) -> Error {
            Error::Upstream { provider: "p".into(), message: "cut short".into() }
        }
    }

    #[tokio::test]
    async fn events_come_in_order_and_stop_at_the_end() {
        let items = stream::iter(vec![Ok(("a", false)), Ok(("", false)), Ok(("b", true)), Ok(("after", false))]);
        let got: Vec<_> = chat_events(items.boxed(), Reader).collect().await;
        assert_eq!(
            kinds(&got),
            ["start:", "progress:a", "progress:b", "progress:tool:success", "progress:tool:failure", "complete:"]
        );
        assert_eq!(got[5].as_ref().unwrap().event.stop_reason, Some(StopReason::EndOfMessage));
    }

    #[tokio::test]
    async fn a_stream_cut_short_or_failing_ends_with_its_error() {
        let got: Vec<_> = chat_events(stream::iter(vec![Ok(("a", false))]).boxed(), Reader).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:a", "error:502"]);
        let failing = stream::iter(vec![Ok(("a", false)), Err(Error::Timeout("slow".into())), Ok(("b", true))]);
        let got: Vec<_> = chat_events(failing.boxed(), Reader).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:a", "error:504"]);
    }
}

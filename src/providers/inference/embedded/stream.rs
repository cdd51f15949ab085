//! Generated pieces turned into the API's answers: gathered for a plain response, or as stream
//! events (chat: `start`, a `progress` per text delta, `complete` with the stop reason).

use futures::stream::{self, StreamExt};

use super::generation::{Piece, Pieces};
use crate::error::{Error, Result};
use crate::prompt::StreamParser;
use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::common::StopReason;
use crate::types::inference::{
    ChatCompletionResponseEvent, ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk,
    CompletionResponseStreamChunk,
};

fn cut_short() -> Error {
    Error::internal("generation stopped before it said how it ended")
}

/// All the text of one generation and how it ended.
pub(super) async fn collect(mut pieces: Pieces) -> Result<(String, StopReason)> {
    let mut text = String::new();
    while let Some(piece) = pieces.recv().await {
        match piece? {
            Piece::Text(t) => text.push_str(&t),
            Piece::End(reason) => return Ok((text, reason)),
        }
    }
    Err(cut_short())
}

/// Pieces as they come, ending after the stop reason or the first error.
fn pieces_until_end(pieces: Pieces) -> impl futures::Stream<Item = Result<Piece>> + Send + 'static {
    stream::unfold((pieces, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Some(Ok(Piece::End(r))) => Some((Ok(Piece::End(r)), (rx, true))),
            Some(Ok(p)) => Some((Ok(p), (rx, false))),
            Some(Err(e)) => Some((Err(e), (rx, true))),
            None => Some((Err(cut_short()), (rx, true))),
        }
    })
}

/// Chat stream events. Dropping the stream drops the channel, which stops the generation.
pub(super) fn chat_events(pieces: Pieces) -> ChatStream {
    let start = ChatCompletionResponseStreamChunk::text(Event::Start, "");
    let rest = pieces_until_end(pieces).map(|p| {
        p.map(|p| match p {
            Piece::Text(t) => ChatCompletionResponseStreamChunk::text(Event::Progress, t),
            Piece::End(reason) => ChatCompletionResponseStreamChunk::new(
                Event::Complete,
                crate::types::inference::EventDelta::Text(String::new()),
                Some(reason),
            ),
        })
    });
    stream::once(async { Ok(start) }).chain(rest).boxed()
}

/// Chat stream events of a Llama 3 model: the text goes through the Llama 3 stream parser, which
/// turns a `<|python_tag|>` reply into tool-call deltas and reports the call found at the end.
pub(super) fn llama3_chat_events(pieces: Pieces) -> ChatStream {
    let chunk = |event: ChatCompletionResponseEvent| Ok(ChatCompletionResponseStreamChunk { event });
    let start = stream::once(async move { chunk(StreamParser::start_event()) });
    let rest = pieces_until_end(pieces)
        .scan(Some(StreamParser::new()), move |parser, p| {
            let events: Vec<Result<ChatCompletionResponseStreamChunk>> = match (p, parser.as_mut()) {
                (Ok(Piece::Text(t)), Some(parser)) => parser.push(&t).into_iter().map(chunk).collect(),
                (Ok(Piece::End(reason)), Some(_)) => {
                    parser.take().map(|p| p.finish(Some(reason))).unwrap_or_default().into_iter().map(chunk).collect()
                }
                (Err(e), _) => vec![Err(e)],
                (Ok(_), None) => Vec::new(),
            };
            futures::future::ready(Some(stream::iter(events)))
        })
        .flatten();
    start.chain(rest).boxed()
}

/// Completion chunks: one per text delta, then an empty one with the stop reason.
pub(super) fn completion_chunks(pieces: Pieces) -> CompletionStream {
    pieces_until_end(pieces)
        .map(|p| {
            p.map(|p| match p {
                Piece::Text(delta) => CompletionResponseStreamChunk { delta, stop_reason: None, logprobs: None },
                Piece::End(reason) => {
                    CompletionResponseStreamChunk { delta: String::new(), stop_reason: Some(reason), logprobs: None }
                }
            })
        })
        .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    fn feed(items: Vec<Result<Piece>>) -> Pieces {
        let (tx, rx) = mpsc::channel(items.len().max(1));
        for i in items {
            tx.try_send(i).unwrap();
        }
        rx
    }

    #[tokio::test]
    async fn chat_stream_sequence() {
        let rx = feed(vec![
            Ok(Piece::Text("Hel".into())),
            Ok(Piece::Text("lo".into())),
            Ok(Piece::End(StopReason::OutOfTokens)),
        ]);
        let got: Vec<_> = chat_events(rx).map(|c| c.unwrap().event).collect().await;
        let kinds: Vec<String> = got.iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(kinds, ["start", "progress", "progress", "complete"]);
        assert_eq!(got[3].stop_reason, Some(StopReason::OutOfTokens));
    }

    #[tokio::test]
    async fn a_channel_closed_early_is_an_error() {
        let rx = feed(vec![Ok(Piece::Text("a".into()))]);
        assert!(collect(rx).await.is_err());
        let rx = feed(vec![Ok(Piece::Text("a".into()))]);
        let got: Vec<_> = completion_chunks(rx).collect().await;
        assert!(got[0].is_ok() && got[1].is_err() && got.len() == 2);
        let rx = feed(vec![Ok(Piece::Text("a".into())), Ok(Piece::End(StopReason::EndOfTurn))]);
        assert_eq!(collect(rx).await.unwrap(), ("a".to_owned(), StopReason::EndOfTurn));
    }
}

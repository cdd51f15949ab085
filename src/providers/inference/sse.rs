//! Server-sent events as OpenAI-compatible servers and TGI stream them: one `data: <json>` line
//! per event, blank lines between events, and (`OpenAI`'s format) `data: [DONE]` at the end.
//!
//! Each `data:` line is taken as a whole event: these servers never split an event's JSON over
//! several `data:` lines, and doing so would need the blank lines the line splitter drops.

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;

use super::client::{Origin, decode};
use super::http_util::{LineError, body_lines, until};
use crate::error::Result;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Data(Value),
    /// `data: [DONE]`: the server finished. Nothing follows it.
    Done,
}

pub type SseStream = BoxStream<'static, Result<Sse>>;

/// What one line of the body means.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Data(&'a [u8]),
    Done,
    /// A comment (`: keep-alive`), `event:`, `id:`, `retry:` or anything else without data.
    Skip,
}

fn classify(line: &[u8]) -> Line<'_> {
    let Some(rest) = line.strip_prefix(b"data:") else {
        // A server that ignored `stream: true` answers with one JSON object; read it as data so
        // its content or its error is not lost.
        return if line.first() == Some(&b'{') { Line::Data(line) } else { Line::Skip };
    };
    let payload = rest.strip_prefix(b" ").unwrap_or(rest);
    if payload.trim_ascii() == b"[DONE]" { Line::Done } else { Line::Data(payload) }
}

/// Decodes an SSE body into events. The stream owns the body, so dropping it closes the
/// connection. It ends after `[DONE]`, after the first error, or when the body ends.
pub fn events<S>(body: S, origin: Origin, path: &'static str) -> SseStream
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    let items = body_lines(body)
        .filter_map(move |line| {
            let item = match line {
                Ok(line) => match classify(&line) {
                    Line::Skip => None,
                    Line::Done => Some(Ok(Sse::Done)),
                    Line::Data(json) => Some(decode::<Value>(json, &origin, path).map(Sse::Data)),
                },
                Err(LineError::TooLong(len)) => Some(Err(origin.bad_answer(path, LineError::describe(len)))),
                Err(LineError::Transport(e)) => Some(Err(origin.transport(path, &e))),
            };
            futures::future::ready(item)
        })
        .boxed();
    until(items, |item| !matches!(item, Ok(Sse::Data(_))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use futures::stream;

    use super::*;
    use crate::error::Error;

    async fn decode_all(body: &[u8], piece: usize) -> Vec<Result<Sse>> {
        let chunks: Vec<reqwest::Result<Bytes>> = body.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        events(stream::iter(chunks), Origin::for_tests(), "/chat/completions").collect().await
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify(b"data: {\"a\":1}"), Line::Data(b"{\"a\":1}"));
        assert_eq!(classify(b"data:{}"), Line::Data(b"{}"));
        assert_eq!(classify(b"data: [DONE]"), Line::Done);
        assert_eq!(classify(b": ping"), Line::Skip);
        assert_eq!(classify(b"event: message"), Line::Skip);
        assert_eq!(classify(b"{\"id\":1}"), Line::Data(b"{\"id\":1}"));
    }

    #[tokio::test]
    async fn events_split_at_any_size_end_at_done() {
        let body =
            b": hello\n\ndata: {\"n\":1}\n\nevent: x\ndata: {\"n\":2}\r\n\r\ndata: [DONE]\n\ndata: {\"n\":3}\n\n";
        for piece in [1, 3, 7, body.len()] {
            let got: Vec<Sse> = decode_all(body, piece).await.into_iter().map(Result::unwrap).collect();
            assert_eq!(got, [Sse::Data(json!({"n": 1})), Sse::Data(json!({"n": 2})), Sse::Done], "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn error_events_and_garbage_end_the_stream() {
        let body = b"data: {\"n\":1}\n\ndata: {\"error\": {\"message\": \"boom\"}}\n\ndata: {\"n\":2}\n\n";
        let got = decode_all(body, 5).await;
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], Err(Error::Upstream { message, .. }) if message.contains("boom")), "{got:?}");
        let got = decode_all(b"data: {not json\n\n", 100).await;
        assert!(matches!(got.as_slice(), [Err(e)] if e.status_code() == 502), "{got:?}");
        // A body without `[DONE]` just ends; the reader decides whether that was too early.
        let got = decode_all(b"data: {\"n\":1}", 4).await;
        assert!(matches!(got.as_slice(), [Ok(Sse::Data(_))]), "{got:?}");
    }
}

//! `/generate_stream` events as text pieces: one per token (with its log probability when asked
//! for), the stop tokens giving the stop reason instead of text.

use std::collections::VecDeque;

use futures::stream::{self, StreamExt};

use super::convert::{self, stop_marker};
use super::wire::StreamEvent;
use crate::error::Result;
use crate::providers::inference::client::Origin;
use crate::providers::inference::sse::{Sse, SseStream};
use crate::providers::inference::text::{Piece, Pieces};
use crate::types::common::StopReason;

struct Reader {
    events: SseStream,
    origin: Origin,
    path: &'static str,
    out: VecDeque<Result<Piece>>,
    /// The stop token seen, which decides the stop reason.
    marker: Option<StopReason>,
    with_logprobs: bool,
    finished: bool,
}

impl Reader {
    fn absorb(&mut self, data: serde_json::Value) {
        let event: StreamEvent = match serde_json::from_value(data) {
            Ok(e) => e,
            Err(e) => {
                let e = self.origin.bad_answer(self.path, format!("an event that is not a token: {e}"));
                self.out.push_back(Err(e));
                self.finished = true;
                return;
            }
        };
        if let Some(token) = &event.token {
            match stop_marker(&token.text) {
                Some(reason) => self.marker = Some(reason),
                None if token.text.is_empty() => {}
                None => {
                    let text = token.text.clone();
                    let score = self
                        .with_logprobs
                        .then(|| convert::token_logprobs(token, event.top_tokens.as_deref()))
                        .flatten();
                    self.out.push_back(Ok(match score {
                        Some(score) => Piece::Scored(text, vec![score]),
                        None => Piece::Text(text),
                    }));
                }
            }
        }
        // The last event carries the whole text and, as details were asked for, the reason.
        if event.details.is_some() || event.generated_text.is_some() {
            let finish = event.details.and_then(|d| d.finish_reason);
            self.out.push_back(Ok(Piece::End(convert::stop_reason(finish.as_deref(), self.marker))));
            self.finished = true;
        }
    }
}

/// The pieces of a streamed generation. Reading stops at the last event, the first error (an
/// `{"error": ...}` event included), or when the stream is dropped, which closes the connection.
pub(super) fn pieces(events: SseStream, origin: Origin, path: &'static str, with_logprobs: bool) -> Pieces {
    let reader = Reader { events, origin, path, out: VecDeque::new(), marker: None, with_logprobs, finished: false };
    stream::unfold(reader, |mut r| async move {
        loop {
            if let Some(item) = r.out.pop_front() {
                return Some((item, r));
            }
            if r.finished {
                return None;
            }
            match r.events.next().await {
                Some(Ok(Sse::Data(data))) => r.absorb(data),
                Some(Err(e)) => {
                    r.finished = true;
                    return Some((Err(e), r));
                }
                // TGI ends with a last event that has the details, never with `[DONE]`.
                Some(Ok(Sse::Done)) | None => {
                    r.finished = true;
                    let e = r.origin.bad_answer(r.path, "the stream ended before the generation finished");
                    return Some((Err(e), r));
                }
            }
        }
    })
    .boxed()
}

/// Reads the first piece, so that an error the server reports straight away (a request it
/// refuses, or one it is too busy for) comes back as an ordinary error rather than inside the
/// stream; the stream then goes on from that piece.
pub(super) async fn started(mut pieces: Pieces) -> Result<Pieces> {
    let first = match pieces.next().await {
        Some(Err(e)) => return Err(e),
        other => other,
    };
    Ok(stream::iter(first).chain(pieces).boxed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::error::Error;
    use crate::providers::inference::text;

    fn events(items: Vec<Sse>) -> SseStream {
        stream::iter(items.into_iter().map(Ok)).boxed()
    }

    fn failing(items: Vec<Result<Sse>>) -> SseStream {
        stream::iter(items).boxed()
    }

    fn token(text: &str, special: bool, logprob: f64) -> Sse {
        Sse::Data(json!({"token": {"id": 1, "text": text, "logprob": logprob, "special": special},
                             "generated_text": null, "details": null}))
    }

    fn last(text: &str, special: bool, finish: &str) -> Sse {
        Sse::Data(json!({"token": {"id": 2, "text": text, "logprob": -0.5, "special": special},
                             "generated_text": "whole", "details": {"finish_reason": finish, "generated_tokens": 3}}))
    }

    async fn all(p: Pieces) -> Vec<Result<Piece>> {
        p.collect().await
    }

    #[tokio::test]
    async fn tokens_become_pieces_and_stop_tokens_reasons() {
        let input = vec![token("Hel", false, -0.1), token("lo", false, -0.2), last("<|eot_id|>", true, "eos_token")];
        let p = pieces(events(input), Origin::for_tests(), "/generate_stream", false);
        let got: Vec<Piece> = all(p).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [Piece::Text("Hel".into()), Piece::Text("lo".into()), Piece::End(StopReason::EndOfTurn)]);

        let input =
            vec![token("<|python_tag|>", true, -0.1), token("f()", false, -0.1), last("<|eom_id|>", true, "eos_token")];
        let p = pieces(events(input), Origin::for_tests(), "/generate_stream", false);
        let got: Vec<Piece> = all(p).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got[0], Piece::Text("<|python_tag|>".into()));
        assert_eq!(got[2], Piece::End(StopReason::EndOfMessage));

        let p =
            pieces(events(vec![token("a", false, 0.0), last("b", false, "length")]), Origin::for_tests(), "/x", false);
        let got: Vec<Piece> = all(p).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [Piece::Text("a".into()), Piece::Text("b".into()), Piece::End(StopReason::OutOfTokens)]);
    }

    #[tokio::test]
    async fn errors_and_early_ends() {
        let p = pieces(events(vec![token("a", false, 0.0)]), Origin::for_tests(), "/generate_stream", false);
        let got = all(p).await;
        assert!(matches!(&got[1], Err(e) if e.status_code() == 502 && e.to_string().contains("ended")), "{got:?}");
        let p = pieces(events(vec![Sse::Data(json!({"token": 3}))]), Origin::for_tests(), "/x", false);
        assert!(matches!(all(p).await.as_slice(), [Err(e)] if e.status_code() == 502));
        let items = vec![Ok(token("a", false, 0.0)), Err(Error::Timeout("slow".into())), Ok(token("b", false, 0.0))];
        let p = pieces(failing(items), Origin::for_tests(), "/x", false);
        let got = all(p).await;
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], Err(Error::Timeout(_))));
        let p = pieces(failing(vec![Err(Error::invalid("refused"))]), Origin::for_tests(), "/x", false);
        assert!(started(p).await.is_err());
    }

    #[tokio::test]
    async fn logprobs_ride_on_the_text() {
        let top = json!([{"text": " you", "logprob": -0.2}, {"text": " me", "logprob": -1.5}]);
        let second = Sse::Data(json!({"token": {"text": " you", "logprob": -0.2}, "top_tokens": top}));
        let input = vec![token("Hi", false, -0.1), second, last("<|eot_id|>", true, "eos_token")];
        let p = started(pieces(events(input), Origin::for_tests(), "/generate_stream", true)).await.unwrap();
        let per_event: Vec<(String, Vec<Value>)> = text::chat_events(p, true)
            .map(|c| {
                let e = c.unwrap().event;
                let lps = e.logprobs.unwrap_or_default().into_iter().map(|l| json!(l.logprobs_by_token)).collect();
                (e.event_type.to_string(), lps)
            })
            .collect()
            .await;
        assert_eq!(per_event[0], ("start".to_owned(), vec![]));
        assert_eq!(per_event[1], ("progress".to_owned(), vec![json!({"Hi": -0.1})]));
        assert_eq!(per_event[2], ("progress".to_owned(), vec![json!({" you": -0.2, " me": -1.5})]));
        // The stop token is not text, so it has no score either.
        assert_eq!(per_event[3], ("complete".to_owned(), vec![]));
        assert_eq!(per_event.len(), 4);
    }
}

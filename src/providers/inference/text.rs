//! Providers whose backend generates plain text from a prompt (the embedded model, TGI, the
//! completion endpoints of hosted services) all turn that text into the API's answers the same
//! way: gathered into one message, or streamed as chat events (`start`, one `progress` per delta,
//! `complete` with the stop reason) or completion chunks. A Llama 3 reply goes through the
//! Llama 3 parser, which finds tool calls in it.

use futures::stream::{self, BoxStream, StreamExt};

use super::{ChatStream, CompletionStream};
use crate::error::{Error, Result};
use crate::prompt::StreamParser;
use crate::types::common::{AssistantRole, CompletionMessage, InterleavedTextMedia, StopReason, TokenLogProbs};
use crate::types::inference::{
    ChatCompletionResponseEvent, ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk,
    CompletionResponseStreamChunk, EventDelta, LogProbConfig,
};

/// One step of a generation: more text (with the log probabilities of the tokens it came from,
/// when the backend gave them and the caller asked), or the end and why. In each token's map
/// the chosen token comes first, then the other candidates: `OpenAI`'s format needs to know
/// which one was picked.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Scored(String, Vec<TokenLogProbs>),
    End(StopReason),
}

/// A whole generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub stop_reason: StopReason,
    /// Present when some piece carried log probabilities.
    pub logprobs: Option<Vec<TokenLogProbs>>,
}

/// A generation as it happens. Dropping it must stop the generation (or close the connection).
pub type Pieces = BoxStream<'static, Result<Piece>>;

/// The number of candidates per token a request's `logprobs` asks for (`None`: no logprobs).
/// `top_k` defaults to 0, which asks for the chosen token's score alone.
pub fn logprobs_top_k(logprobs: Option<&LogProbConfig>) -> Result<Option<usize>> {
    let Some(config) = logprobs else { return Ok(None) };
    let k = config.top_k.unwrap_or(0);
    match usize::try_from(k) {
        Ok(k) if k <= MAX_TOP_K => Ok(Some(k.max(1))),
        _ => Err(Error::invalid(format!("`logprobs.top_k` must be between 0 and {MAX_TOP_K}, got {k}"))),
    }
}

/// The most candidates per token a backend is asked for (`OpenAI`'s own limit).
const MAX_TOP_K: usize = 20;

fn cut_short() -> Error {
    Error::internal("the generation stopped before it said how it ended")
}

/// The pieces of a backend's streamed answer: `read` turns each item into pieces (an `End` among
/// them finishes the answer), and a stream that stops without one ends with `ended_early`'s
/// error, which names the backend. Items after the end are never read: the readers of
/// [`Pieces`] stop there, dropping (and so closing) the body.
pub fn pieces_of<I, R, E>(items: BoxStream<'static, Result<I>>, mut read: R, ended_early: E) -> Pieces
where
    I: Send + 'static,
    R: FnMut(I) -> Result<Vec<Piece>> + Send + 'static,
    E: FnOnce() -> Error + Send + 'static,
{
    items
        .flat_map(move |item| {
            let pieces: Vec<Result<Piece>> = match item.and_then(&mut read) {
                Ok(pieces) => pieces.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            stream::iter(pieces)
        })
        .chain(stream::once(async move { Err(ended_early()) }))
        .boxed()
}

/// Text (scored when the backend sent scores), unless it is empty and unscored.
pub fn text_piece(text: String, logprobs: Option<Vec<TokenLogProbs>>) -> Option<Piece> {
    match logprobs {
        Some(scores) => Some(Piece::Scored(text, scores)),
        None if text.is_empty() => None,
        None => Some(Piece::Text(text)),
    }
}

/// All the text of one generation and how it ended.
pub async fn collect(mut pieces: Pieces) -> Result<Generated> {
    let mut text = String::new();
    let mut logprobs: Option<Vec<TokenLogProbs>> = None;
    while let Some(piece) = pieces.next().await {
        match piece? {
            Piece::Text(t) => text.push_str(&t),
            Piece::Scored(t, scores) => {
                text.push_str(&t);
                logprobs.get_or_insert_with(Vec::new).extend(scores);
            }
            Piece::End(stop_reason) => return Ok(Generated { text, stop_reason, logprobs }),
        }
    }
    Err(cut_short())
}

/// The finished reply as an assistant message; a Llama 3 reply may hold a tool call.
pub fn assistant_message(text: String, stop_reason: StopReason, llama3: bool) -> CompletionMessage {
    if llama3 {
        return crate::prompt::decode_assistant_message(&text, stop_reason);
    }
    CompletionMessage {
        role: AssistantRole::default(),
        content: InterleavedTextMedia::Text(text),
        stop_reason,
        tool_calls: Vec::new(),
    }
}

/// Pieces as they come, ending after the stop reason or the first error; a generation that ends
/// without saying why is an error.
fn until_end(pieces: Pieces) -> impl futures::Stream<Item = Result<Piece>> + Send + 'static {
    stream::unfold((pieces, false), |(mut pieces, done)| async move {
        if done {
            return None;
        }
        match pieces.next().await {
            Some(Ok(Piece::End(r))) => Some((Ok(Piece::End(r)), (pieces, true))),
            Some(Ok(p)) => Some((Ok(p), (pieces, false))),
            Some(Err(e)) => Some((Err(e), (pieces, true))),
            None => Some((Err(cut_short()), (pieces, true))),
        }
    })
}

/// Chat stream events. With `llama3`, a `<|python_tag|>` reply streams as tool-call deltas and
/// the call found in the whole reply is reported before `complete`.
pub fn chat_events(pieces: Pieces, llama3: bool) -> ChatStream {
    if llama3 { llama3_chat_events(pieces) } else { plain_chat_events(pieces) }
}

fn plain_chat_events(pieces: Pieces) -> ChatStream {
    let start = ChatCompletionResponseStreamChunk::text(Event::Start, "");
    let rest = until_end(pieces).map(|p| {
        p.map(|p| match p {
            Piece::Text(t) => ChatCompletionResponseStreamChunk::text(Event::Progress, t),
            Piece::Scored(t, scores) => {
                let mut chunk = ChatCompletionResponseStreamChunk::text(Event::Progress, t);
                chunk.event.logprobs = Some(scores);
                chunk
            }
            Piece::End(reason) => {
                ChatCompletionResponseStreamChunk::new(Event::Complete, EventDelta::Text(String::new()), Some(reason))
            }
        })
    });
    stream::once(async { Ok(start) }).chain(rest).boxed()
}

fn llama3_chat_events(pieces: Pieces) -> ChatStream {
    let chunk = |event: ChatCompletionResponseEvent| Ok(ChatCompletionResponseStreamChunk { event });
    let start = stream::once(async move { chunk(StreamParser::start_event()) });
    let rest = until_end(pieces)
        .scan(Some(StreamParser::new()), move |parser, p| {
            let events: Vec<Result<ChatCompletionResponseStreamChunk>> = match (p, parser.as_mut()) {
                (Ok(Piece::Text(t)), Some(parser)) => parser.push(&t).into_iter().map(chunk).collect(),
                // The scores go with the first event the text produced (the parser may hold
                // text back, e.g. while a tool call is being read).
                (Ok(Piece::Scored(t, scores)), Some(parser)) => {
                    let mut events = parser.push(&t);
                    if let Some(first) = events.first_mut() {
                        first.logprobs = Some(scores);
                    }
                    events.into_iter().map(chunk).collect()
                }
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
pub fn completion_chunks(pieces: Pieces) -> CompletionStream {
    until_end(pieces)
        .map(|p| {
            p.map(|p| match p {
                Piece::Text(delta) => CompletionResponseStreamChunk { delta, stop_reason: None, logprobs: None },
                Piece::Scored(delta, scores) => {
                    CompletionResponseStreamChunk { delta, stop_reason: None, logprobs: Some(scores) }
                }
                Piece::End(reason) => {
                    CompletionResponseStreamChunk { delta: String::new(), stop_reason: Some(reason), logprobs: None }
                }
            })
        })
        .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#[allow(clippy::float_cmp, reason = "the scores are copied through, never computed")]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::types::common::ToolName;

    fn feed(items: Vec<Result<Piece>>) -> Pieces {
        stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn chat_stream_sequence() {
        let pieces = feed(vec![
            Ok(Piece::Text("Hel".into())),
            Ok(Piece::Text("lo".into())),
            Ok(Piece::End(StopReason::OutOfTokens)),
        ]);
        let got: Vec<_> = chat_events(pieces, false).map(|c| c.unwrap().event).collect().await;
        let kinds: Vec<String> = got.iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(kinds, ["start", "progress", "progress", "complete"]);
        assert_eq!(got[3].stop_reason, Some(StopReason::OutOfTokens));
    }

    #[tokio::test]
    async fn llama3_replies_yield_tool_calls() {
        let pieces = feed(vec![
            Ok(Piece::Text("<|python_tag|>brave_search.call(".into())),
            Ok(Piece::Text("query=\"rust\")".into())),
            Ok(Piece::End(StopReason::EndOfMessage)),
        ]);
        let got: Vec<_> = chat_events(pieces, true).map(|c| c.unwrap().event).collect().await;
        assert_eq!(got.last().unwrap().event_type.to_string(), "complete");
        let call = got.iter().find_map(|e| match &e.delta {
            EventDelta::ToolCall(d) => match &d.content {
                crate::types::inference::ToolCallDeltaContent::Call(c) => Some(c.clone()),
                crate::types::inference::ToolCallDeltaContent::Text(_) => None,
            },
            EventDelta::Text(_) => None,
        });
        assert_eq!(call.unwrap().tool_name, ToolName::from("brave_search"));
        let msg =
            assistant_message("<|python_tag|>brave_search.call(query=\"x\")".into(), StopReason::EndOfMessage, true);
        assert_eq!(msg.tool_calls.len(), 1);
        assert!(assistant_message("plain".into(), StopReason::EndOfTurn, false).tool_calls.is_empty());
    }

    #[tokio::test]
    async fn backend_items_become_pieces_until_the_end() {
        let items = stream::iter(vec![Ok("a"), Ok("b."), Ok("never read")]).boxed();
        let read = |s: &str| {
            let mut out: Vec<Piece> = text_piece(s.trim_end_matches('.').to_owned(), None).into_iter().collect();
            if s.ends_with('.') {
                out.push(Piece::End(StopReason::EndOfTurn));
            }
            Ok(out)
        };
        let cut = || Error::Upstream { provider: "p".into(), message: "cut short".into() };
        let got = collect(pieces_of(items, read, cut)).await.unwrap();
        assert_eq!((got.text.as_str(), got.stop_reason), ("ab", StopReason::EndOfTurn));
        let short = pieces_of(stream::iter(vec![Ok("a")]).boxed(), read, cut);
        let e = collect(short).await.unwrap_err();
        assert!(matches!(e, Error::Upstream { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_stream_that_ends_early_is_an_error() {
        assert!(collect(feed(vec![Ok(Piece::Text("a".into()))])).await.is_err());
        let got: Vec<_> = completion_chunks(feed(vec![Ok(Piece::Text("a".into()))])).collect().await;
        assert!(got[0].is_ok() && got[1].is_err() && got.len() == 2);
        let pieces = feed(vec![Ok(Piece::Text("a".into())), Ok(Piece::End(StopReason::EndOfTurn))]);
        let got = collect(pieces).await.unwrap();
        assert_eq!((got.text.as_str(), got.stop_reason, got.logprobs), ("a", StopReason::EndOfTurn, None));
    }

    #[test]
    fn top_k_is_bounded() {
        assert_eq!(logprobs_top_k(None).unwrap(), None);
        assert_eq!(logprobs_top_k(Some(&LogProbConfig::default())).unwrap(), Some(1));
        assert_eq!(logprobs_top_k(Some(&LogProbConfig { top_k: Some(5) })).unwrap(), Some(5));
        assert!(logprobs_top_k(Some(&LogProbConfig { top_k: Some(21) })).is_err());
        assert!(logprobs_top_k(Some(&LogProbConfig { top_k: Some(-1) })).is_err());
    }

    #[tokio::test]
    async fn scores_travel_with_their_text() {
        let score = |t: &str, lp: f64| TokenLogProbs { logprobs_by_token: IndexMap::from([(t.to_owned(), lp)]) };
        let items = || {
            feed(vec![
                Ok(Piece::Scored("Hi".into(), vec![score("Hi", -0.5)])),
                Ok(Piece::Scored(" there".into(), vec![score(" there", -1.0)])),
                Ok(Piece::End(StopReason::EndOfTurn)),
            ])
        };
        let got = collect(items()).await.unwrap();
        assert_eq!(got.text, "Hi there");
        assert_eq!(got.logprobs.unwrap().len(), 2);
        for llama3 in [false, true] {
            let events: Vec<_> = chat_events(items(), llama3).map(|c| c.unwrap().event).collect().await;
            let scored: usize = events.iter().filter_map(|e| e.logprobs.as_ref()).map(Vec::len).sum();
            assert_eq!(scored, 2, "llama3 = {llama3}");
        }
        let chunks: Vec<_> = completion_chunks(items()).map(Result::unwrap).collect().await;
        assert_eq!(chunks[1].logprobs.as_ref().unwrap()[0].logprobs_by_token[" there"], -1.0);
    }
}

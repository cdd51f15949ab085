//! `OpenAI`'s `stop` sequences, applied to any provider's answer: the text ends just before the
//! first sequence found, which is not included, and the answer ends there with `end_of_turn`.
//! A streamed answer is cut as it goes (text that may be the start of a sequence is held back
//! until the next delta decides it), and the provider's stream is dropped at the cut, which
//! stops the generation.

use futures::stream::{self, StreamExt};

use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::common::{CompletionMessage, InterleavedTextMedia, StopReason, TokenLogProbs};
use crate::types::inference::{
    ChatCompletionResponseEventType as Event, ChatCompletionResponseStreamChunk, CompletionResponseStreamChunk,
    EventDelta,
};

/// Where the first stop sequence starts in `text`, if one is there.
fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// The length of the longest end of `text` that some sequence starts with: text that must wait.
fn held_back(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|s| (1..s.len()).rev().filter(move |&n| s.is_char_boundary(n)).map(move |n| &s[..n]))
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// Scans streamed text for stop sequences.
#[derive(Debug)]
struct Scanner {
    stops: Vec<String>,
    pending: String,
}

/// What one delta of text gives.
enum Scan {
    /// Text that is safe to send (maybe empty).
    Go(String),
    /// A sequence was found: the text before it, and the answer ends.
    Stop(String),
}

impl Scanner {
    fn push(&mut self, delta: &str) -> Scan {
        self.pending.push_str(delta);
        if let Some(at) = first_stop(&self.pending, &self.stops) {
            self.pending.truncate(at);
            return Scan::Stop(std::mem::take(&mut self.pending));
        }
        let keep = held_back(&self.pending, &self.stops);
        let rest = self.pending.split_off(self.pending.len() - keep);
        Scan::Go(std::mem::replace(&mut self.pending, rest))
    }

    /// Text held back when the answer ended without a sequence completing.
    fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// A whole answer cut at the first stop sequence, with the scores of the tokens that fall
/// before the cut (each map's first entry is the chosen token, whose text says how far it goes).
pub(super) fn cut_answer(
    mut message: CompletionMessage,
    mut logprobs: Option<Vec<TokenLogProbs>>,
    stops: &[String],
) -> (CompletionMessage, Option<Vec<TokenLogProbs>>) {
    if let InterleavedTextMedia::Text(text) = &mut message.content {
        if let Some(at) = first_stop(text, stops) {
            text.truncate(at);
            message.stop_reason = StopReason::EndOfTurn;
            if let Some(scores) = &mut logprobs {
                let mut end = 0;
                scores.retain(|t| {
                    let keep = end < at;
                    end += t.logprobs_by_token.first().map_or(0, |(token, _)| token.len());
                    keep
                });
            }
        }
    }
    (message, logprobs)
}

fn progress(text: String) -> ChatCompletionResponseStreamChunk {
    ChatCompletionResponseStreamChunk::text(Event::Progress, text)
}

fn complete(reason: Option<StopReason>) -> ChatCompletionResponseStreamChunk {
    ChatCompletionResponseStreamChunk::new(Event::Complete, EventDelta::Text(String::new()), reason)
}

/// Chat events cut at the first stop sequence. Tool-call deltas pass as they are.
pub(super) fn chat_events(events: ChatStream, stops: Vec<String>) -> ChatStream {
    let scanner = Scanner { stops, pending: String::new() };
    events
        .scan((scanner, false), |(scanner, stopped), item| {
            if *stopped {
                return futures::future::ready(None);
            }
            let out: Vec<crate::error::Result<ChatCompletionResponseStreamChunk>> = match item {
                Ok(chunk) => match (&chunk.event.event_type, &chunk.event.delta) {
                    (Event::Progress, EventDelta::Text(t)) => match scanner.push(t) {
                        Scan::Go(text) if text.is_empty() => Vec::new(),
                        Scan::Go(text) => {
                            let mut chunk = chunk;
                            chunk.event.delta = EventDelta::Text(text);
                            vec![Ok(chunk)]
                        }
                        Scan::Stop(text) => {
                            *stopped = true;
                            let before = (!text.is_empty()).then(|| Ok(progress(text)));
                            before.into_iter().chain([Ok(complete(Some(StopReason::EndOfTurn)))]).collect()
                        }
                    },
                    (Event::Complete, _) => {
                        let rest = scanner.flush();
                        let before = (!rest.is_empty()).then(|| Ok(progress(rest)));
                        before.into_iter().chain([Ok(chunk)]).collect()
                    }
                    _ => vec![Ok(chunk)],
                },
                Err(e) => vec![Err(e)],
            };
            futures::future::ready(Some(stream::iter(out)))
        })
        .flatten()
        .boxed()
}

/// Completion chunks cut at the first stop sequence.
pub(super) fn completion_chunks(chunks: CompletionStream, stops: Vec<String>) -> CompletionStream {
    let scanner = Scanner { stops, pending: String::new() };
    chunks
        .scan((scanner, false), |(scanner, stopped), item| {
            if *stopped {
                return futures::future::ready(None);
            }
            let out = match item {
                Ok(chunk) => match scanner.push(&chunk.delta) {
                    Scan::Stop(delta) => {
                        *stopped = true;
                        Some(Ok(CompletionResponseStreamChunk {
                            delta,
                            stop_reason: Some(StopReason::EndOfTurn),
                            logprobs: None,
                        }))
                    }
                    Scan::Go(mut delta) => {
                        if chunk.stop_reason.is_some() {
                            delta.push_str(&scanner.flush());
                        }
                        let empty = delta.is_empty() && chunk.stop_reason.is_none();
                        (!empty).then_some(Ok(CompletionResponseStreamChunk { delta, ..chunk }))
                    }
                },
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(Some(stream::iter(out)))
        })
        .flatten()
        .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::types::common::AssistantRole;

    fn stops(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    fn chat(deltas: &[&str]) -> ChatStream {
        let mut items = vec![Ok(ChatCompletionResponseStreamChunk::text(Event::Start, ""))];
        items.extend(deltas.iter().map(|d| Ok(progress((*d).to_owned()))));
        items.push(Ok(complete(Some(StopReason::OutOfTokens))));
        stream::iter(items).boxed()
    }

    async fn texts(events: ChatStream) -> (String, Vec<String>, Option<StopReason>) {
        let got: Vec<_> = events.map(Result::unwrap).collect().await;
        let text = got
            .iter()
            .filter_map(|c| match &c.event.delta {
                EventDelta::Text(t) => Some(t.as_str()),
                EventDelta::ToolCall(_) => None,
            })
            .collect();
        let kinds = got.iter().map(|c| c.event.event_type.to_string()).collect();
        (text, kinds, got.last().unwrap().event.stop_reason)
    }

    #[tokio::test]
    async fn a_sequence_split_over_deltas_is_found_and_left_out() {
        let (text, kinds, reason) =
            texts(chat_events(chat(&["Hello wo", "rld\nEN", "D more", "x"]), stops(&["\nEND"]))).await;
        assert_eq!(text, "Hello world");
        assert_eq!(kinds.last().unwrap(), "complete");
        assert_eq!(reason, Some(StopReason::EndOfTurn));
    }

    #[tokio::test]
    async fn held_back_text_that_is_no_sequence_is_sent() {
        let (text, _, reason) = texts(chat_events(chat(&["a\nE", "x", "nd\nE"]), stops(&["\nEND"]))).await;
        assert_eq!(text, "a\nExnd\nE");
        assert_eq!(reason, Some(StopReason::OutOfTokens));
    }

    #[tokio::test]
    async fn completion_chunks_are_cut_too() {
        let items: Vec<_> = ["1, 2", ", 3", ", 4"]
            .iter()
            .map(|d| Ok(CompletionResponseStreamChunk { delta: (*d).to_owned(), stop_reason: None, logprobs: None }))
            .collect();
        let got: Vec<_> =
            completion_chunks(stream::iter(items).boxed(), stops(&[", 3"])).map(Result::unwrap).collect().await;
        let text: String = got.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(text, "1, 2");
        assert_eq!(got.last().unwrap().stop_reason, Some(StopReason::EndOfTurn));
    }

    #[test]
    fn whole_answers_are_cut_at_the_earliest_sequence() {
        let m = CompletionMessage {
            role: AssistantRole::default(),
            content: InterleavedTextMedia::Text("one. two! three".into()),
            stop_reason: StopReason::OutOfTokens,
            tool_calls: Vec::new(),
        };
        let (cut, _) = cut_answer(m.clone(), None, &stops(&["!", "."]));
        assert_eq!((cut.content.as_text(""), cut.stop_reason), ("one".to_owned(), StopReason::EndOfTurn));
        assert_eq!(cut_answer(m.clone(), None, &stops(&["?"])).0.stop_reason, StopReason::OutOfTokens);
        let score = |t: &str| TokenLogProbs { logprobs_by_token: [(t.to_owned(), -1.0)].into_iter().collect() };
        let scores = ["one", ".", " two"].map(score).to_vec();
        let (_, kept) = cut_answer(m, Some(scores), &stops(&["."]));
        assert_eq!(kept.unwrap().len(), 1, "the scores of the cut text go too");
        assert_eq!(held_back("abc\n", &stops(&["\nX", "c\n!"])), 2);
        assert_eq!(held_back("é", &stops(&["éa"])), 2);
    }
}

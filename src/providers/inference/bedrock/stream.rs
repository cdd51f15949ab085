//! Streamed Bedrock answers turned into Llama Stack stream events.
//!
//! Chat (`ConverseStream`): `start`, a `progress` per text delta; a tool call streams as a
//! `started` tool-call delta when its block opens and an `in_progress` one per piece of its JSON
//! input, then, once Bedrock says why the message stopped, each call is reported whole
//! (`success`, or `failure` when its input is not a JSON object) followed by `complete`: the
//! same order the Llama stream parser gives for the in-process models.
//!
//! Completion (`InvokeModelWithResponseStream`): one chunk per piece of generated text, the last
//! one carrying the stop reason.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{Failure, Frames, Origin};
use super::convert::{llama_stop_reason, stop_reason, tool_call};
use super::eventstream::Frame;
use super::wire::{ContentBlockDelta, ContentBlockStart, LlamaGeneration, MessageStop, PayloadPart};
use crate::error::{Error, Result};
use crate::providers::inference::chat_stream::{self, ChatReader, Events};
use crate::providers::inference::text::{self, Piece};
use crate::providers::inference::{ChatStream, CompletionStream};
use crate::types::inference::ToolCallParseStatus;

/// What the stream's errors name: the provider, and the model and operation asked for.
#[derive(Debug, Clone)]
pub(super) struct Context {
    pub origin: Origin,
    pub model: String,
    pub path: String,
}

impl Context {
    fn exception(&self, exception_type: &str, message: &str) -> Error {
        self.origin.failure(&Failure::from_stream(exception_type, message), &self.model, 1)
    }

    fn decode<T: DeserializeOwned>(&self, event_type: &str, payload: &[u8]) -> Result<T> {
        serde_json::from_slice(payload)
            .map_err(|e| self.origin.bad_answer(&self.path, format!("a `{event_type}` event that does not parse: {e}")))
    }

    fn cut_short(&self) -> Error {
        self.origin.bad_answer(&self.path, "the stream ended before Bedrock finished the answer")
    }
}

/// A tool call being put together from its pieces.
#[derive(Debug)]
struct PartialCall {
    index: u64,
    id: String,
    name: String,
    input: String,
}

/// Reads `ConverseStream` frames.
struct BedrockChat {
    calls: Vec<PartialCall>,
    ctx: Context,
}

impl BedrockChat {
    fn block_start(&mut self, e: ContentBlockStart, out: &mut Events) {
        let Some(start) = e.start.and_then(|s| s.tool_use) else { return };
        self.calls.push(PartialCall {
            index: e.content_block_index,
            id: start.id,
            name: start.name,
            input: String::new(),
        });
        out.partial_call(String::new(), ToolCallParseStatus::Started);
    }

    fn block_delta(&mut self, e: ContentBlockDelta, out: &mut Events) {
        let Some(delta) = e.delta else { return };
        out.text(delta.text.unwrap_or_default(), None);
        if let Some(piece) = delta.tool_use {
            match self.calls.iter_mut().find(|c| c.index == e.content_block_index) {
                Some(call) => call.input.push_str(&piece.input),
                // Input for a block that never said it was a tool call: keep it, nameless, so
                // it is reported as a failed call rather than lost.
                None => self.calls.push(PartialCall {
                    index: e.content_block_index,
                    id: String::new(),
                    name: String::new(),
                    input: piece.input.clone(),
                }),
            }
            out.partial_call(piece.input, ToolCallParseStatus::InProgress);
        }
    }

    /// The calls, whole (a call whose input is not a JSON object is a failure carrying its raw
    /// text), each with the stop reason, then `complete`.
    fn finish(&mut self, bedrock_reason: Option<&str>, out: &mut Events) {
        let calls: Vec<_> = self
            .calls
            .drain(..)
            .map(|c| {
                let input = if c.input.trim().is_empty() { Ok(Value::Null) } else { serde_json::from_str(&c.input) };
                input
                    .map_err(|e| e.to_string())
                    .and_then(|v| tool_call(&c.id, &c.name, &v))
                    .map_err(|_| format!("{}({})", c.name, c.input))
            })
            .collect();
        let reason = stop_reason(bedrock_reason, !calls.is_empty());
        out.finish(calls, reason);
    }
}

impl ChatReader for BedrockChat {
    type Item = Frame;

    fn absorb(&mut self, frame: Frame, out: &mut Events) {
        let (event_type, payload) = match frame {
            Frame::Exception { exception_type, message } => {
                return out.fail(self.ctx.exception(&exception_type, &message));
            }
            Frame::Event { event_type, payload } => (event_type, payload),
        };
        let outcome = match event_type.as_str() {
            "contentBlockStart" => self.ctx.decode(&event_type, &payload).map(|e| self.block_start(e, out)),
            "contentBlockDelta" => self.ctx.decode(&event_type, &payload).map(|e| self.block_delta(e, out)),
            "messageStop" => self
                .ctx
                .decode::<MessageStop>(&event_type, &payload)
                .map(|e| self.finish(e.stop_reason.as_deref(), out)),
            // `messageStart` only names the role, `contentBlockStop` adds nothing the calls'
            // input does not show, and `metadata` carries token counts the API has no room for.
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            out.fail(e);
        }
    }

    fn ended_early(&self) -> Error {
        self.ctx.cut_short()
    }
}

/// Chat events for a `ConverseStream` answer.
pub(super) fn chat_events(frames: Frames, ctx: Context) -> ChatStream {
    chat_stream::chat_events(frames, BedrockChat { calls: Vec::new(), ctx })
}

/// One `chunk` event of a Llama completion stream, decoded.
fn generation(ctx: &Context, payload: &[u8]) -> Result<LlamaGeneration> {
    let part: PayloadPart = ctx.decode("chunk", payload)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(part.bytes.trim())
        .map_err(|e| ctx.origin.bad_answer(&ctx.path, format!("a chunk whose `bytes` are not base64: {e}")))?;
    ctx.decode("chunk", &bytes)
}

/// Completion chunks for an `InvokeModelWithResponseStream` answer from a Llama model.
pub(super) fn completion_chunks(frames: Frames, ctx: Context) -> CompletionStream {
    let reader = ctx.clone();
    let read = move |frame: Frame| {
        let payload = match frame {
            Frame::Exception { exception_type, message } => return Err(reader.exception(&exception_type, &message)),
            Frame::Event { event_type, payload } if event_type == "chunk" => payload,
            Frame::Event { .. } => return Ok(Vec::new()),
        };
        let g = generation(&reader, &payload)?;
        let mut pieces: Vec<Piece> = text::text_piece(g.generation.unwrap_or_default(), None).into_iter().collect();
        if let Some(reason) = g.stop_reason {
            pieces.push(Piece::End(llama_stop_reason(Some(&reason))));
        }
        Ok(pieces)
    };
    text::completion_chunks(text::pieces_of(frames, read, move || ctx.cut_short()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt;
    use futures::stream;
    use serde_json::json;

    use super::*;
    use crate::providers::inference::chat_stream::kinds;
    use crate::types::common::{StopReason, ToolName};
    use crate::types::inference::{EventDelta, ToolCallDeltaContent};

    fn ctx() -> Context {
        Context {
            origin: Origin {
                provider: Arc::from("bedrock0"),
                endpoint: Arc::from("http://127.0.0.1:1"),
                read_timeout: Duration::from_secs(1),
            },
            model: "meta.llama3-1-8b-instruct-v1:0".into(),
            path: "/model/m/converse-stream".into(),
        }
    }

    fn ev(event_type: &str, payload: &Value) -> Frame {
        Frame::Event { event_type: event_type.into(), payload: payload.to_string().into_bytes() }
    }

    fn frames(items: Vec<Frame>) -> Frames {
        stream::iter(items.into_iter().map(Ok)).boxed()
    }

    fn text(t: &str) -> Frame {
        ev("contentBlockDelta", &json!({"contentBlockIndex": 0, "delta": {"text": t}, "p": "abc"}))
    }

    #[tokio::test]
    async fn text_stream() {
        let input = vec![
            ev("messageStart", &json!({"role": "assistant"})),
            text("Hel"),
            text("lo"),
            ev("contentBlockStop", &json!({"contentBlockIndex": 0})),
            ev("messageStop", &json!({"stopReason": "max_tokens"})),
            ev("metadata", &json!({"usage": {"inputTokens": 3}})),
        ];
        let got: Vec<_> = chat_events(frames(input), ctx()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:Hel", "progress:lo", "complete:"]);
        assert_eq!(got[3].as_ref().unwrap().event.stop_reason, Some(StopReason::OutOfTokens));
    }

    #[tokio::test]
    async fn tool_use_stream() {
        let input = vec![
            ev("messageStart", &json!({"role": "assistant"})),
            ev(
                "contentBlockStart",
                &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "brave_search"}}}),
            ),
            ev("contentBlockDelta", &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"query\": "}}})),
            ev("contentBlockDelta", &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"rust\"}"}}})),
            ev("contentBlockStop", &json!({"contentBlockIndex": 1})),
            ev(
                "contentBlockStart",
                &json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "f"}}}),
            ),
            ev("contentBlockDelta", &json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{oops"}}})),
            ev("messageStop", &json!({"stopReason": "tool_use"})),
        ];
        let got: Vec<_> = chat_events(frames(input), ctx()).collect().await;
        assert_eq!(
            kinds(&got),
            [
                "start:",
                "progress:tool:started",
                "progress:tool:in_progress",
                "progress:tool:in_progress",
                "progress:tool:started",
                "progress:tool:in_progress",
                "progress:tool:success",
                "progress:tool:failure",
                "complete:"
            ]
        );
        let event = &got[6].as_ref().unwrap().event;
        assert_eq!(event.stop_reason, Some(StopReason::EndOfMessage));
        let EventDelta::ToolCall(d) = &event.delta else { unreachable!() };
        let ToolCallDeltaContent::Call(call) = &d.content else { unreachable!() };
        assert_eq!((call.call_id.as_str(), &call.tool_name), ("t1", &ToolName::from("brave_search")));
        assert_eq!(call.arguments["query"], "rust");
        let EventDelta::ToolCall(d) = &got[7].as_ref().unwrap().event.delta else { unreachable!() };
        assert_eq!(d.content, ToolCallDeltaContent::Text("f({oops)".into()));
    }

    #[tokio::test]
    async fn exceptions_and_early_ends_are_errors() {
        let input = vec![
            text("partial"),
            Frame::Exception { exception_type: "modelStreamErrorException".into(), message: "it broke".into() },
            text("never read"),
        ];
        let got: Vec<_> = chat_events(frames(input), ctx()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:partial", "error:502"]);
        let e = got[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("bedrock0") && e.contains("ModelStreamErrorException") && e.contains("it broke"), "{e}");
        let got: Vec<_> = chat_events(frames(vec![text("a")]), ctx()).collect().await;
        assert_eq!(kinds(&got), ["start:", "progress:a", "error:502"]);
        let got: Vec<_> =
            chat_events(frames(vec![ev("contentBlockDelta", &json!({"delta": 3}))]), ctx()).collect().await;
        assert_eq!(kinds(&got), ["start:", "error:502"]);
    }

    fn chunk(generation: &str, stop: Option<&str>) -> Frame {
        let inner = json!({"generation": generation, "prompt_token_count": null, "generation_token_count": 1, "stop_reason": stop});
        let bytes = base64::engine::general_purpose::STANDARD.encode(inner.to_string());
        ev("chunk", &json!({"bytes": bytes}))
    }

    #[tokio::test]
    async fn completion_chunks_end_with_the_stop_reason() {
        let input = vec![chunk("Once", None), chunk("", None), chunk(" upon", None), chunk("", Some("length"))];
        let got: Vec<_> = completion_chunks(frames(input), ctx()).collect().await;
        let got: Vec<_> = got.into_iter().map(|c| c.map(|c| (c.delta, c.stop_reason)).unwrap()).collect();
        assert_eq!(
            got,
            [("Once".into(), None), (" upon".into(), None), (String::new(), Some(StopReason::OutOfTokens))]
        );
        let input = vec![
            chunk("a", None),
            Frame::Exception { exception_type: "throttlingException".into(), message: "x".into() },
        ];
        let got: Vec<_> = completion_chunks(frames(input), ctx()).collect().await;
        assert!(matches!(got.as_slice(), [Ok(_), Err(e)] if e.status_code() == 503));
        let got: Vec<_> = completion_chunks(frames(vec![ev("chunk", &json!({"bytes": "%%%"}))]), ctx()).collect().await;
        assert!(matches!(got.as_slice(), [Err(e)] if e.status_code() == 502));
    }
}

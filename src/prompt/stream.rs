//! Turning streamed model text into chat completion events. Text is passed through as it comes;
//! once a chunk opens with `<|python_tag|>` the rest is streamed as an in-progress tool call.
//! At the end the whole text is parsed once more and the tool call it holds, if any, is reported
//! (this also catches JSON or function-tag calls that were streamed as plain text).

use super::decode::decode_assistant_message;
use super::render::{EOM, EOT, PYTHON_TAG};
use crate::types::common::StopReason;
use crate::types::inference::{
    ChatCompletionResponseEvent, ChatCompletionResponseEventType as EventType, EventDelta, ToolCallDelta,
    ToolCallDeltaContent, ToolCallParseStatus,
};

/// Incremental reader of one streamed assistant reply.
#[derive(Debug, Default)]
pub struct StreamParser {
    buffer: String,
    ipython: bool,
    /// Set by a stop token seen in the text; it wins over the reason given at the end.
    stop_reason: Option<StopReason>,
}

fn event(event_type: EventType, delta: EventDelta, stop_reason: Option<StopReason>) -> ChatCompletionResponseEvent {
    ChatCompletionResponseEvent { event_type, delta, logprobs: None, stop_reason }
}

fn tool_delta(content: ToolCallDeltaContent, parse_status: ToolCallParseStatus) -> EventDelta {
    EventDelta::ToolCall(ToolCallDelta { content, parse_status })
}

impl StreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The event that opens every stream (empty delta).
    pub fn start_event() -> ChatCompletionResponseEvent {
        event(EventType::Start, EventDelta::Text(String::new()), None)
    }

    /// Feeds one chunk of model text and returns the progress events it produces. A chunk that
    /// is exactly a stop token only records the stop reason.
    pub fn push(&mut self, text: &str) -> Vec<ChatCompletionResponseEvent> {
        if !self.ipython && text.starts_with(PYTHON_TAG) {
            self.ipython = true;
            self.buffer.push_str(text);
            let delta = tool_delta(ToolCallDeltaContent::Text(String::new()), ToolCallParseStatus::Started);
            return vec![event(EventType::Progress, delta, None)];
        }
        if text == EOT {
            self.stop_reason = Some(StopReason::EndOfTurn);
            return Vec::new();
        }
        if text == EOM {
            self.stop_reason = Some(StopReason::EndOfMessage);
            return Vec::new();
        }
        self.buffer.push_str(text);
        let delta = if self.ipython {
            tool_delta(ToolCallDeltaContent::Text(text.to_owned()), ToolCallParseStatus::InProgress)
        } else {
            EventDelta::Text(text.to_owned())
        };
        vec![event(EventType::Progress, delta, self.stop_reason)]
    }

    /// Ends the stream: a failure event when a `<|python_tag|>` reply held no parsable call, a
    /// success event for the call found, then the `complete` event. `stop_reason` (from the
    /// backend's finish reason) applies only when no stop token was seen in the text.
    pub fn finish(self, stop_reason: Option<StopReason>) -> Vec<ChatCompletionResponseEvent> {
        let stop = self.stop_reason.or(stop_reason);
        let message = decode_assistant_message(&self.buffer, stop.unwrap_or(StopReason::OutOfTokens));
        let mut out = Vec::new();
        if self.ipython && message.tool_calls.is_empty() {
            let delta = tool_delta(ToolCallDeltaContent::Text(String::new()), ToolCallParseStatus::Failure);
            out.push(event(EventType::Progress, delta, stop));
        }
        for call in message.tool_calls {
            let delta = tool_delta(ToolCallDeltaContent::Call(call), ToolCallParseStatus::Success);
            out.push(event(EventType::Progress, delta, stop));
        }
        out.push(event(EventType::Complete, EventDelta::Text(String::new()), stop));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str], stop: Option<StopReason>) -> Vec<ChatCompletionResponseEvent> {
        let mut p = StreamParser::new();
        let mut out: Vec<_> = chunks.iter().flat_map(|c| p.push(c)).collect();
        out.extend(p.finish(stop));
        out
    }

    fn status(e: &ChatCompletionResponseEvent) -> Option<ToolCallParseStatus> {
        match &e.delta {
            EventDelta::ToolCall(d) => Some(d.parse_status),
            EventDelta::Text(_) => None,
        }
    }

    #[test]
    fn plain_text_stream() {
        let ev = run(&["Hel", "lo", "<|eot_id|>"], None);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].delta, EventDelta::Text("Hel".into()));
        assert_eq!(ev[2].event_type, EventType::Complete);
        assert_eq!(ev[2].stop_reason, Some(StopReason::EndOfTurn));
    }

    #[test]
    fn python_tag_stream_reports_the_call() {
        let ev =
            run(&["<|python_tag|>", "brave_search.call(", "query=\"x\")", "<|eom_id|>"], Some(StopReason::EndOfTurn));
        let statuses: Vec<_> = ev.iter().map(status).collect();
        assert_eq!(
            statuses,
            [
                Some(ToolCallParseStatus::Started),
                Some(ToolCallParseStatus::InProgress),
                Some(ToolCallParseStatus::InProgress),
                Some(ToolCallParseStatus::Success),
                None
            ]
        );
        assert_eq!(ev[4].stop_reason, Some(StopReason::EndOfMessage));
    }

    #[test]
    fn unparsable_python_tag_reply_fails() {
        // The tag arrives mid-reply, so the final parse sees ordinary text with no call in it.
        let ev = run(&["Sure. ", "<|python_tag|>", "oops"], Some(StopReason::OutOfTokens));
        assert_eq!(status(&ev[ev.len() - 2]), Some(ToolCallParseStatus::Failure));
    }
}

//! Llama 3.1/3.2 prompts: the system and tool prompts each model family expects, the dialog
//! encoding with its special tokens, the tokenizer, and the parsing of replies (whole or
//! streamed) back into messages and tool calls. Text providers send the rendered prompt as is.

mod augment;
mod decode;
mod pyfmt;
mod pylist;
mod render;
mod stream;
mod templates;
mod tokenizer;

pub use augment::augment_messages;
pub use decode::decode_assistant_message;
pub use pyfmt::float_repr;
pub use render::{Piece, dialog_pieces, encode_tool_call};
pub use stream::StreamParser;
pub use tokenizer::{Llama3Tokenizer, VISION_TOKEN_ID};

use crate::error::Result;
use crate::types::common::{InterleavedTextMedia, Message, ToolPromptFormat};
use crate::types::inference::ChatCompletionRequest;

/// Model families whose prompts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStyle {
    /// Llama 3.1, and the Llama 3.2 vision models, which share its tool format.
    Llama31,
    /// Llama 3.2 1B/3B: `python_list` custom tools, no knowledge date.
    Llama32Text,
    /// Everything else (Llama 2/3, Llama Guard, unknown): messages are sent unchanged.
    Other,
}

/// Descriptors of the Llama 3.1 models, in both their short and `:variant` spellings.
const LLAMA31: &[&str] = &[
    "Llama3.1-8B",
    "Llama3.1-70B",
    "Llama3.1-405B:bf16-mp8",
    "Llama3.1-405B",
    "Llama3.1-405B:bf16-mp16",
    "Llama3.1-8B-Instruct",
    "Llama3.1-70B-Instruct",
    "Llama3.1-405B-Instruct:bf16-mp8",
    "Llama3.1-405B-Instruct",
    "Llama3.1-405B-Instruct:bf16-mp16",
    "Llama3.1-8B:bf16-mp1",
    "Llama3.1-70B:bf16-mp8",
    "Llama3.1-405B:fp8-mixed-mp8",
    "Llama3.1-8B-Instruct:bf16-mp1",
    "Llama3.1-70B-Instruct:bf16-mp8",
    "Llama3.1-405B-Instruct:fp8-mixed-mp8",
    "Llama3.2-11B-Vision",
    "Llama3.2-90B-Vision",
    "Llama3.2-11B-Vision-Instruct",
    "Llama3.2-90B-Vision-Instruct",
    "Llama3.2-11B-Vision:bf16-mp1",
    "Llama3.2-90B-Vision:bf16-mp8",
    "Llama3.2-11B-Vision-Instruct:bf16-mp1",
    "Llama3.2-90B-Vision-Instruct:bf16-mp8",
];

/// Descriptors of the Llama 3.2 text models.
const LLAMA32_TEXT: &[&str] = &[
    "Llama3.2-1B",
    "Llama3.2-3B",
    "Llama3.2-1B-Instruct",
    "Llama3.2-3B-Instruct",
    "Llama3.2-1B:bf16-mp1",
    "Llama3.2-3B:bf16-mp1",
    "Llama3.2-1B-Instruct:bf16-mp1",
    "Llama3.2-3B-Instruct:bf16-mp1",
];

/// The prompt family of a model descriptor such as `Llama3.1-8B-Instruct`.
pub fn style_for(llama_model: &str) -> PromptStyle {
    if LLAMA31.contains(&llama_model) {
        PromptStyle::Llama31
    } else if LLAMA32_TEXT.contains(&llama_model) {
        PromptStyle::Llama32Text
    } else {
        PromptStyle::Other
    }
}

/// Full prompt text with special tokens, ending with the open assistant header, dated today.
pub fn render_chat_prompt(req: &ChatCompletionRequest, llama_model: &str) -> Result<String> {
    render_chat_prompt_on(req, llama_model, chrono::Local::now().date_naive())
}

/// [`render_chat_prompt`] with a given date. Tool calls already in the history are written in
/// the default (JSON) format whatever the request's `tool_prompt_format`, as text prompts
/// have always been rendered.
pub fn render_chat_prompt_on(
    req: &ChatCompletionRequest,
    llama_model: &str,
    today: chrono::NaiveDate,
) -> Result<String> {
    let messages = augment_messages(req, style_for(llama_model), today)?;
    Ok(render_messages(&messages, ToolPromptFormat::Json))
}

/// The dialog prompt as text: each message with its header and terminator, then an open
/// assistant header.
pub fn render_messages(messages: &[Message], tool_prompt_format: ToolPromptFormat) -> String {
    render::join(&render::dialog_pieces(messages, tool_prompt_format))
}

/// A raw completion prompt: `<|begin_of_text|>` and the content. Content with nothing to encode
/// (an empty list or a lone image) gives an empty prompt, as the reference encoder does.
pub fn render_completion_prompt(content: &InterleavedTextMedia) -> String {
    let mut pieces = Vec::new();
    match content {
        InterleavedTextMedia::Text(t) => pieces.push(Piece::Text(t.clone())),
        InterleavedTextMedia::List(items) => {
            for item in items {
                pieces.push(match item {
                    crate::types::common::MediaItem::Text(t) => Piece::Text(t.clone()),
                    crate::types::common::MediaItem::Image(_) => Piece::Special(render::IMAGE),
                });
            }
        }
        InterleavedTextMedia::Image(_) => {}
    }
    if pieces.is_empty() {
        return String::new();
    }
    format!("{}{}", render::BEGIN_OF_TEXT, render::join(&pieces))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn styles_by_descriptor() {
        assert_eq!(style_for("Llama3.1-8B-Instruct"), PromptStyle::Llama31);
        assert_eq!(style_for("Llama3.2-11B-Vision-Instruct"), PromptStyle::Llama31);
        assert_eq!(style_for("Llama3.2-3B-Instruct"), PromptStyle::Llama32Text);
        assert_eq!(style_for("Llama3.2-1B-Instruct:bf16-mp1"), PromptStyle::Llama32Text);
        assert_eq!(style_for("Llama-Guard-3-8B"), PromptStyle::Other);
        assert_eq!(style_for("llama3.1:8b"), PromptStyle::Other);
    }

    #[test]
    fn chat_prompt_for_one_user_message() {
        let req: ChatCompletionRequest =
            serde_json::from_value(json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
                .unwrap_or_else(|e| unreachable!("{e}"));
        let day = chrono::NaiveDate::from_ymd_opt(2024, 9, 25).unwrap_or_default();
        let text = render_chat_prompt_on(&req, "Llama3.1-8B-Instruct", day).unwrap_or_default();
        assert_eq!(
            text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\
             Today Date: 25 September 2024<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        let text = render_chat_prompt_on(&req, "Llama3.2-3B-Instruct", day).unwrap_or_default();
        assert!(text.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n<|eot_id|>"));
    }

    #[test]
    fn completion_prompt() {
        assert_eq!(render_completion_prompt(&"Once upon".into()), "<|begin_of_text|>Once upon");
        assert_eq!(render_completion_prompt(&InterleavedTextMedia::List(Vec::new())), "");
    }
}

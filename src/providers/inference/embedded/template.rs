//! Chat messages rendered into a prompt. A Llama 3 model gets the core's Llama 3 prompt format
//! (system prompt, tool definitions, tool-call parsing); any other model gets the chat template
//! stored in its GGUF file, applied by llama.cpp, which recognises the common template families
//! (`ChatML` among them) from the template's text.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use crate::error::{Error, Result};
use crate::types::common::{InterleavedTextMedia, Message};

/// One message as a chat template takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Turn {
    pub role: &'static str,
    pub content: String,
}

/// The request's messages as template turns. The model reads text only, so images are refused
/// rather than silently dropped; a user message's `context` follows its content, as in
/// upstream's prompt formats.
pub(super) fn turns(messages: &[Message], model_id: &str) -> Result<Vec<Turn>> {
    if messages.is_empty() {
        return Err(Error::invalid("`messages`: at least one message is required"));
    }
    let text = |c: &InterleavedTextMedia, at: String| -> Result<String> {
        if c.has_media() {
            return Err(Error::invalid(format!("`{at}`: model `{model_id}` reads text only, and this holds an image")));
        }
        Ok(c.as_text(""))
    };
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("messages[{i}].content");
            let (role, content) = match m {
                Message::System(s) => ("system", text(&s.content, at)?),
                Message::User(u) => {
                    let mut content = text(&u.content, at)?;
                    if let Some(ctx) = &u.context {
                        content.push_str("\n\n");
                        content.push_str(&text(ctx, format!("messages[{i}].context"))?);
                    }
                    ("user", content)
                }
                Message::Assistant(a) => ("assistant", text(&a.content, at)?),
                Message::Ipython(t) => ("tool", text(&t.content, at)?),
            };
            Ok(Turn { role, content })
        })
        .collect()
}

/// How a model's chats are rendered.
pub(super) enum ChatFormat {
    /// A template llama.cpp applies.
    Gguf(LlamaChatTemplate),
    /// Llama 3's format, for the model with this descriptor (e.g. `Llama3.1-8B-Instruct`).
    Llama3 { descriptor: String },
}

impl ChatFormat {
    /// Llama 3's format for a Llama 3 model; else the GGUF's own template when llama.cpp can
    /// apply it; else `ChatML` (with a warning), the most common format among small instruct
    /// models.
    pub fn of(model: &LlamaModel, model_id: &str) -> Result<Self> {
        let meta = |key: &str| model.meta_val_str(key).ok();
        let name = meta("general.name").unwrap_or_default();
        let has_headers = model.vocab().tokenize(b"<|start_header_id|>", false, true).len() == 1;
        if let Some(descriptor) =
            llama3_descriptor(&name, meta("general.size_label").as_deref()).filter(|_| has_headers)
        {
            tracing::info!("model `{model_id}` is {descriptor}: using the Llama 3 prompt format");
            return Ok(Self::Llama3 { descriptor });
        }
        let probe = [Turn { role: "user", content: "hi".into() }];
        if let Ok(template) = model.chat_template(None) {
            let own = Self::Gguf(template);
            match own.render(model, &probe) {
                Ok(_) => return Ok(own),
                Err(e) => tracing::warn!("model `{model_id}`: its chat template cannot be applied ({e}); using ChatML"),
            }
        } else {
            tracing::warn!("model `{model_id}` carries no chat template; using ChatML");
        }
        let template = LlamaChatTemplate::new("chatml").map_err(|e| Error::internal(e.to_string()))?;
        Ok(Self::Gguf(template))
    }

    /// The prompt for `turns` with the GGUF template, ending where the assistant's answer
    /// begins. (Llama 3 prompts are rendered from the whole request instead.)
    pub fn render(&self, model: &LlamaModel, turns: &[Turn]) -> Result<String> {
        let Self::Gguf(template) = self else {
            return Err(Error::internal("a Llama 3 prompt is rendered from the request"));
        };
        let chat = turns
            .iter()
            .map(|t| LlamaChatMessage::new(t.role.to_owned(), t.content.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid("`messages`: a message holds a NUL character"))?;
        model
            .apply_chat_template(template, &chat, true)
            .map_err(|e| Error::internal(format!("applying the chat template failed: {e}")))
    }
}

/// The Llama descriptor (`Llama3.1-8B-Instruct`, `Llama3.2-1B`, …) of a GGUF whose
/// `general.name` says it is a Llama 3 model, e.g. "Meta Llama 3.1 8B Instruct". The size comes
/// from `general.size_label` or the name.
fn llama3_descriptor(name: &str, size_label: Option<&str>) -> Option<String> {
    let lower = name.to_lowercase().replace(['-', '_'], " ");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "llama" || w.starts_with("llama3"))?;
    // "llama 3.1" or "llama3.1".
    let version = match words[at].strip_prefix("llama").filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => *words.get(at + 1)?,
    };
    if !matches!(version, "3" | "3.1" | "3.2") {
        return None;
    }
    let is_size = |w: &str| w.len() > 1 && w.ends_with('b') && w[..w.len() - 1].bytes().all(|b| b.is_ascii_digit());
    let size = size_label
        .map(str::to_lowercase)
        .filter(|s| is_size(s))
        .or_else(|| words.iter().find(|w| is_size(w)).map(|w| (*w).to_owned()))?;
    let instruct = if words.contains(&"instruct") { "-Instruct" } else { "" };
    Some(format!("Llama{version}-{}{instruct}", size.to_uppercase()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(v: serde_json::Value) -> Vec<Message> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn messages_become_turns() {
        let m = messages(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": ["Hello", " there"], "context": "It is Monday."},
            {"role": "assistant", "content": "Hi!", "stop_reason": "end_of_turn"},
            {"role": "ipython", "call_id": "c1", "tool_name": "brave_search", "content": "42"},
        ]));
        let got: Vec<(&str, String)> = turns(&m, "m").unwrap().into_iter().map(|t| (t.role, t.content)).collect();
        assert_eq!(
            got,
            [
                ("system", "Be brief.".to_owned()),
                ("user", "Hello there\n\nIt is Monday.".to_owned()),
                ("assistant", "Hi!".to_owned()),
                ("tool", "42".to_owned()),
            ]
        );
    }

    #[test]
    fn llama3_models_are_recognised_by_name() {
        assert_eq!(
            llama3_descriptor("Meta Llama 3.1 8B Instruct", Some("8B")).as_deref(),
            Some("Llama3.1-8B-Instruct")
        );
        assert_eq!(llama3_descriptor("Llama-3.2-1B-Instruct", None).as_deref(), Some("Llama3.2-1B-Instruct"));
        assert_eq!(llama3_descriptor("Meta-Llama-3-8B", None).as_deref(), Some("Llama3-8B"));
        assert_eq!(llama3_descriptor("llama3.2 3b", None).as_deref(), Some("Llama3.2-3B"));
        assert_eq!(llama3_descriptor("SmolLM2 135M Instruct", Some("135M")), None);
        assert_eq!(llama3_descriptor("Llama 2 7B Chat", None), None);
        assert_eq!(llama3_descriptor("Llama 3.1 Instruct", None), None);
    }

    #[test]
    fn images_and_empty_chats_are_refused() {
        let e = turns(&[], "m").unwrap_err();
        assert!(e.to_string().contains("messages"), "{e}");
        let m = messages(json!([
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"image": {"uri": "https://example.com/x.png"}}]},
        ]));
        let e = turns(&m, "tiny").unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("messages[1].content") && e.to_string().contains("tiny"), "{e}");
    }
}

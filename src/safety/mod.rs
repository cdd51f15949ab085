//! Safety providers: the shields each serves and how they judge a conversation.
//!
//! - `codeshield`: `meta-reference/codeshield`, insecure-code patterns found in messages.
//! - `llama_guard`: the Llama Guard prompt and verdict, run on a guard model through the
//!   inference routing table; `meta_reference` serves it as the `llama_guard` shield.
//! - `prompt_guard`: the Prompt Guard classifier run in process; `meta_reference` serves it as
//!   the `prompt_guard` shield.
//! - `bedrock`: `remote::bedrock`, Bedrock guardrails as `generic_content_shield` shields.
//! - `together`: `remote::together`, the `llama_guard` shield on Together's hosted guard models.
//!
//! What the providers share lives here: the verdict a shield reaches, how it becomes the
//! `SafetyViolation` of the API, and how a provider refuses a shield type it does not serve.

pub mod bedrock;
pub mod codeshield;
pub mod llama_guard;
pub mod meta_reference;
pub mod prompt_guard;
#[cfg(test)]
mod tests;
pub mod together;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::common::{JsonObject, Message, UserMessage, UserRole};
use crate::types::safety::{RunShieldResponse, SafetyViolation, ViolationLevel};
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

/// What a shield concluded about a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Safe,
    Violation {
        level: ViolationLevel,
        user_message: Option<String>,
        /// `metadata.violation_type`: category codes or pattern ids.
        violation_type: String,
        /// More metadata beside `violation_type`.
        details: JsonObject,
    },
}

impl Verdict {
    pub fn into_response(self) -> RunShieldResponse {
        match self {
            Self::Safe => RunShieldResponse { violation: None },
            Self::Violation { level, user_message, violation_type, details } => {
                let mut metadata = JsonObject::new();
                metadata.insert("violation_type".into(), Value::String(violation_type));
                metadata.extend(details);
                RunShieldResponse {
                    violation: Some(SafetyViolation { violation_level: level, user_message, metadata }),
                }
            }
        }
    }
}

/// A shield definition a provider reports, with identifier equal to its type.
pub fn shield_def(shield_type: &str, params: JsonObject) -> ShieldDef {
    ShieldDef { identifier: shield_type.to_owned(), shield_type: shield_type.to_owned(), params }
}

/// The error for a shield whose type a provider does not serve; it lists the types it does.
pub fn unsupported_type(provider_id: &str, shield: &ShieldDefWithProvider, served: &[&str]) -> Error {
    let served = if served.is_empty() { "none".to_owned() } else { served.join(", ") };
    Error::invalid(format!(
        "shield `{}` has type `{}`, which safety provider `{provider_id}` does not serve; it serves: {served}",
        shield.identifier, shield.shield_type
    ))
}

/// Checks there is something to judge.
pub fn require_messages(messages: &[Message]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::field(&["body", "messages"], "at least one message is required", "value_error"));
    }
    Ok(())
}

/// A conversation whose first message is not from the user (a system prompt, a tool result)
/// starts with that content as a user message instead, as guard models expect.
pub fn first_as_user(mut messages: Vec<Message>) -> Vec<Message> {
    if let Some(first) = messages.first_mut() {
        if !matches!(first, Message::User(_)) {
            let content = first.content().clone();
            *first = Message::User(UserMessage { role: UserRole::default(), content, context: None });
        }
    }
    messages
}

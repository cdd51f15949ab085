//! Llama Guard 3: the prompt that asks a guard model to judge the last message of a
//! conversation against the unsafe-content categories, and the reading of its answer.
//!
//! Category names and codes, the prompt's wording and the accepted guard models are upstream's
//! (they follow the Llama Guard 3 model card).

use regex::Regex;
use serde::Deserialize;
use std::sync::LazyLock;

use super::Verdict;
use crate::error::{Error, Result};
use crate::types::common::JsonObject;
use crate::types::common::{InterleavedTextMedia, MediaItem, Message, Role};
use crate::types::safety::ViolationLevel;

/// Codes and names of every Llama Guard 3 category, in order.
pub const CATEGORIES: [(&str, &str); 14] = [
    ("S1", "Violent Crimes"),
    ("S2", "Non-Violent Crimes"),
    ("S3", "Sex Crimes"),
    ("S4", "Child Exploitation"),
    ("S5", "Defamation"),
    ("S6", "Specialized Advice"),
    ("S7", "Privacy"),
    ("S8", "Intellectual Property"),
    ("S9", "Indiscriminate Weapons"),
    ("S10", "Hate"),
    ("S11", "Self-Harm"),
    ("S12", "Sexual Content"),
    ("S13", "Elections"),
    ("S14", "Code Interpreter Abuse"),
];

/// The guard models and how many of the categories each was trained on.
pub const MODELS: [(&str, usize); 3] =
    [("Llama-Guard-3-8B", 14), ("Llama-Guard-3-1B", 13), ("Llama-Guard-3-11B-Vision", 13)];

const VISION_MODEL: &str = "Llama-Guard-3-11B-Vision";

/// What the user is told when the guard flags a message.
pub const CANNED_RESPONSE: &str = "I can't answer that. Can I help with something else?";

/// The `llama_guard_shield` section of the `meta-reference` safety config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaGuardConfig {
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default)]
    pub excluded_categories: Vec<String>,
    /// Skip conversations whose last message is the user's.
    #[serde(default)]
    pub disable_input_check: bool,
    /// Skip conversations whose last message is the assistant's.
    #[serde(default)]
    pub disable_output_check: bool,
}

fn default_model() -> String {
    "Llama-Guard-3-1B".to_owned()
}

#[derive(Debug, Clone)]
pub struct LlamaGuard {
    pub model: String,
    categories: usize,
    excluded: Vec<String>,
    disable_input_check: bool,
    disable_output_check: bool,
}

impl LlamaGuard {
    /// Checks the config; `at` is its path in the run config, for error messages.
    pub fn new(config: LlamaGuardConfig, at: &str) -> Result<Self> {
        let Some((_, categories)) = MODELS.iter().find(|(m, _)| *m == config.model) else {
            let names: Vec<&str> = MODELS.iter().map(|(m, _)| *m).collect();
            return Err(Error::config(format!(
                "`{at}.model`: `{}` is not a Llama Guard model; use one of {}",
                config.model,
                names.join(", ")
            )));
        };
        for code in &config.excluded_categories {
            if !CATEGORIES.iter().any(|(c, _)| c == code) {
                return Err(Error::config(format!(
                    "`{at}.excluded_categories`: `{code}` is not a category code; codes are S1 to S14"
                )));
            }
        }
        // Excluding every category excludes none, as upstream.
        let mut excluded = config.excluded_categories;
        if CATEGORIES.iter().all(|(c, _)| excluded.iter().any(|e| e == c)) {
            excluded.clear();
        }
        Ok(Self {
            model: config.model,
            categories: *categories,
            excluded,
            disable_input_check: config.disable_input_check,
            disable_output_check: config.disable_output_check,
        })
    }

    /// The category lines of the prompt: `S1: Violent Crimes.`, without the excluded ones.
    pub fn category_lines(&self) -> Vec<String> {
        CATEGORIES[..self.categories]
            .iter()
            .filter(|(code, _)| !self.excluded.iter().any(|e| e == code))
            .map(|(code, name)| format!("{code}: {name}."))
            .collect()
    }

    /// Whether the config turns off the check for this conversation's last speaker.
    pub fn skips(&self, messages: &[Message]) -> bool {
        match messages.last().map(Message::role) {
            Some(Role::User) => self.disable_input_check,
            Some(Role::Assistant) => self.disable_output_check,
            _ => false,
        }
    }

    /// The conversation the guard judges: it must start with the user; when the first two are
    /// both the user's, the first is dropped; after that speakers must alternate.
    pub fn conversation(messages: Vec<Message>) -> Result<Vec<Message>> {
        let Some(first) = messages.first() else {
            return Err(Error::field(&["body", "messages"], "at least one message is required", "value_error"));
        };
        if first.role() != Role::User {
            return Err(Error::invalid("messages must start with a user message"));
        }
        let mut messages = messages;
        if messages.len() >= 2 && messages[1].role() == Role::User {
            messages.remove(0);
        }
        for i in 1..messages.len() {
            if messages[i].role() == messages[i - 1].role() {
                return Err(Error::invalid(format!(
                    "messages must alternate between user and assistant: message {i} has the same role ({}) as message {}",
                    messages[i].role().as_str(),
                    i - 1
                )));
            }
        }
        Ok(messages)
    }

    /// The text of the one user message sent to the guard model.
    pub fn prompt(&self, messages: &[Message]) -> String {
        let agent = messages.last().map(|m| capitalize(m.role().as_str())).unwrap_or_default();
        let conversation: Vec<String> = messages
            .iter()
            .map(|m| format!("{}: {}", capitalize(m.role().as_str()), m.content().as_text(" ")))
            .collect();
        format!(
            "Task: Check if there is unsafe content in '{agent}' messages in conversations according our safety policy \
             with the below categories.\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT \
             CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n{conversation}\n\n<END CONVERSATION>\n\nProvide your safety \
             assessment for ONLY THE LAST {agent} message in the above conversation:\n - First line must read 'safe' \
             or 'unsafe'.\n - If unsafe, a second line must include a comma-separated list of violated categories.",
            categories = self.category_lines().join("\n"),
            conversation = conversation.join("\n\n"),
        )
    }

    /// The content of the message sent to the guard model: the prompt, behind the most recent
    /// user image for the vision model.
    pub fn guard_input(&self, messages: &[Message]) -> InterleavedTextMedia {
        let prompt = self.prompt(messages);
        if self.model != VISION_MODEL {
            return InterleavedTextMedia::Text(prompt);
        }
        let image = messages.iter().rev().filter(|m| m.role() == Role::User).find_map(|m| match m.content() {
            InterleavedTextMedia::Image(i) => Some(i.clone()),
            InterleavedTextMedia::List(items) => items.iter().find_map(|it| match it {
                MediaItem::Image(i) => Some(i.clone()),
                MediaItem::Text(_) => None,
            }),
            InterleavedTextMedia::Text(_) => None,
        });
        match image {
            Some(i) => InterleavedTextMedia::List(vec![MediaItem::Image(i), MediaItem::Text(prompt)]),
            None => InterleavedTextMedia::Text(prompt),
        }
    }

    /// Reads the guard model's answer: `safe`, or `unsafe` and a line of comma-separated codes.
    /// Codes that are all excluded are no violation. Anything else is `Err` with the reason.
    pub fn parse(&self, answer: &str) -> std::result::Result<Verdict, String> {
        parse_answer(answer, &self.excluded)
    }
}

/// Reads a Llama Guard answer: `safe`, or `unsafe` and a line of comma-separated codes; codes
/// that are all in `excluded` are no violation. Anything else is `Err` with the reason.
pub fn parse_answer(answer: &str, excluded: &[String]) -> std::result::Result<Verdict, String> {
    static UNSAFE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^unsafe\n([^\n]+)$").ok());
    let answer = answer.trim();
    if answer == "safe" {
        return Ok(Verdict::Safe);
    }
    let codes = UNSAFE.as_ref().and_then(|re| re.captures(answer)).and_then(|c| c.get(1)).map(|m| m.as_str().trim());
    let Some(codes) = codes.filter(|c| !c.is_empty()) else {
        return Err(format!(
            "expected `safe`, or `unsafe` and a line of category codes, but the guard model answered {answer:?}"
        ));
    };
    if codes.split(',').map(str::trim).all(|c| excluded.iter().any(|e| e == c)) {
        return Ok(Verdict::Safe);
    }
    Ok(Verdict::Violation {
        level: ViolationLevel::Error,
        user_message: Some(CANNED_RESPONSE.to_owned()),
        violation_type: codes.to_owned(),
        details: JsonObject::new(),
    })
}

/// Python's `str.capitalize`: first letter upper, the rest lower.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(model: &str, excluded: &[&str]) -> LlamaGuard {
        let cfg = LlamaGuardConfig {
            model: model.into(),
            excluded_categories: excluded.iter().map(|s| (*s).to_owned()).collect(),
            disable_input_check: false,
            disable_output_check: false,
        };
        LlamaGuard::new(cfg, "providers.safety[0].config.llama_guard_shield").unwrap()
    }

    #[test]
    fn models_decide_the_categories_and_exclusions_remove_them() {
        assert_eq!(guard("Llama-Guard-3-8B", &[]).category_lines().len(), 14);
        let g = guard("Llama-Guard-3-1B", &["S2", "S10"]);
        let lines = g.category_lines();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "S1: Violent Crimes.");
        assert_eq!(lines[1], "S3: Sex Crimes.");
        assert!(!lines.iter().any(|l| l.starts_with("S10:") || l.starts_with("S14:")));
        let all: Vec<&str> = CATEGORIES.iter().map(|(c, _)| *c).collect();
        assert_eq!(guard("Llama-Guard-3-8B", &all).category_lines().len(), 14);
    }

    #[test]
    fn bad_config_names_the_field() {
        let cfg = |model: &str, ex: &[&str]| LlamaGuardConfig {
            model: model.into(),
            excluded_categories: ex.iter().map(|s| (*s).to_owned()).collect(),
            disable_input_check: false,
            disable_output_check: false,
        };
        let e = LlamaGuard::new(cfg("Llama3.1-8B", &[]), "x.llama_guard_shield").unwrap_err().to_string();
        assert!(e.contains("x.llama_guard_shield.model") && e.contains("Llama-Guard-3-1B"), "{e}");
        let e = LlamaGuard::new(cfg("Llama-Guard-3-1B", &["violence"]), "x").unwrap_err().to_string();
        assert!(e.contains("x.excluded_categories") && e.contains("`violence`"), "{e}");
    }

    #[test]
    fn answers_are_read_strictly() {
        let g = guard("Llama-Guard-3-8B", &["S6"]);
        assert_eq!(g.parse(" safe\n"), Ok(Verdict::Safe));
        let Ok(Verdict::Violation { violation_type, level, user_message, .. }) = g.parse("unsafe\nS1,S6") else {
            panic!("not a violation")
        };
        assert_eq!((violation_type.as_str(), level), ("S1,S6", ViolationLevel::Error));
        assert_eq!(user_message.as_deref(), Some(CANNED_RESPONSE));
        assert_eq!(g.parse("unsafe\nS6"), Ok(Verdict::Safe));
        for bad in ["", "unsafe", "Safe", "unsafe\n", "unsafe\nS1\nS2", "I think this is fine", "safe.", "unsafe S1"] {
            let e = g.parse(bad).unwrap_err();
            assert!(e.contains("guard model answered"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn capitalize_is_pythons() {
        assert_eq!(capitalize("ipython"), "Ipython");
        assert_eq!(capitalize("assistant"), "Assistant");
        assert_eq!(capitalize(""), "");
    }
}

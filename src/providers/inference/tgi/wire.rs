//! The parts of TGI's answers we read (`/info`, `/generate`, `/generate_stream` events). Fields
//! default where servers differ: the serverless Inference API leaves some out.

use serde::Deserialize;

/// `GET /info`.
#[derive(Debug, Deserialize)]
pub(super) struct Info {
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub max_total_tokens: Option<u64>,
}

/// `POST /generate`. The serverless Inference API wraps the same object in a one-item list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum GenerateAnswer {
    One(Generated),
    List(Vec<Generated>),
}

impl GenerateAnswer {
    pub fn into_one(self) -> Option<Generated> {
        match self {
            Self::One(g) => Some(g),
            Self::List(list) => list.into_iter().next(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Generated {
    #[serde(default)]
    pub generated_text: String,
    #[serde(default)]
    pub details: Option<Details>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Details {
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// The most likely tokens at each step, when `top_n_tokens` was asked for.
    #[serde(default)]
    pub top_tokens: Vec<Vec<Token>>,
}

/// One generated token. Special tokens (`<|eot_id|>`, `<|python_tag|>`) come with their text, so
/// the text alone says which they are.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Token {
    #[serde(default)]
    pub text: String,
    /// Null for a token the server has no probability for.
    #[serde(default)]
    pub logprob: Option<f64>,
}

/// One event of `/generate_stream`: a token, and on the last one the whole text and details.
#[derive(Debug, Deserialize)]
pub(super) struct StreamEvent {
    #[serde(default)]
    pub token: Option<Token>,
    #[serde(default)]
    pub top_tokens: Option<Vec<Token>>,
    #[serde(default)]
    pub generated_text: Option<String>,
    #[serde(default)]
    pub details: Option<StreamDetails>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StreamDetails {
    #[serde(default)]
    pub finish_reason: Option<String>,
}

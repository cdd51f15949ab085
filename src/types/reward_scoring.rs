//! `llama_stack.apis.reward_scoring`: scoring sampled generations of a dialog (an API of the
//! contract with no implementation behind it upstream).

use serde::{Deserialize, Serialize};

use super::common::Message;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMessage {
    pub message: Message,
    pub score: f64,
}

/// A dialog and the candidate continuations sampled for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialogGenerations {
    pub dialog: Vec<Message>,
    pub sampled_generations: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredDialogGenerations {
    pub dialog: Vec<Message>,
    pub scored_generations: Vec<ScoredMessage>,
}

/// `RewardScoreRequest` (upstream's model is `RewardScoringRequest`, with the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScoreRequest {
    pub dialog_generations: Vec<DialogGenerations>,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScoringResponse {
    pub scored_generations: Vec<ScoredDialogGenerations>,
}

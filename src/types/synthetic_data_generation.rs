//! `llama_stack.apis.synthetic_data_generation`: generating and filtering scored dialogs (an API
//! of the contract with no implementation behind it upstream).

use serde::{Deserialize, Serialize};

use super::common::{JsonObject, Message};
use super::macros::string_enum;
use super::reward_scoring::ScoredDialogGenerations;

string_enum!(FilteringFunction {
    None = "none",
    Random = "random",
    TopK = "top_k",
    TopP = "top_p",
    TopKTopP = "top_k_top_p",
    Sigmoid = "sigmoid",
});

#[allow(clippy::derivable_impls, reason = "string_enum! cannot mark a default variant")]
impl Default for FilteringFunction {
    fn default() -> Self {
        Self::None
    }
}

/// `SyntheticDataGenerateRequest`. The contract lists `filtering_function` as required, but
/// upstream defaults it to `none`, so a body without it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticDataGenerateRequest {
    pub dialogs: Vec<Message>,
    #[serde(default)]
    pub filtering_function: FilteringFunction,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticDataGenerationResponse {
    pub synthetic_data: Vec<ScoredDialogGenerations>,
    #[serde(default)]
    pub statistics: Option<JsonObject>,
}

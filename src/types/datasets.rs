//! `llama_stack.apis.dataset`: the train/eval dataset description (an API of the contract with
//! no implementation behind it upstream).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::common::{JsonObject, Url};
use super::macros::string_enum;

string_enum!(TrainEvalDatasetColumnType {
    Dialog = "dialog",
    Text = "text",
    Media = "media",
    Number = "number",
    Json = "json",
});

/// A dataset for training or evaluating a model: where its content lives and what its columns hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainEvalDataset {
    pub columns: IndexMap<String, TrainEvalDatasetColumnType>,
    pub content_url: Url,
    #[serde(default)]
    pub metadata: Option<JsonObject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateDatasetRequest {
    pub uuid: String,
    pub dataset: TrainEvalDataset,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteDatasetRequest {
    pub dataset_uuid: String,
}

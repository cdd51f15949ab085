//! `photogen`: the tool exists so agents that list it load, but no image generation model
//! stands behind it. A call answers the model, in words, that no image was made, so it can
//! tell the user instead of showing a made-up picture.

use async_trait::async_trait;

use super::{Tool, ToolContext, ToolOutput, string_arg};
use crate::error::Result;
use crate::types::common::ToolCall;

const NAME: &str = "photogen";

/// What the model reads back from every call.
pub const UNAVAILABLE: &str =
    "photogen is not available: this server has no image generation model, so no image was created.";

pub struct PhotogenTool;

#[async_trait]
impl Tool for PhotogenTool {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self, call: &ToolCall, _ctx: &ToolContext) -> Result<ToolOutput> {
        // The argument is still checked, so a malformed call is reported as such.
        string_arg(call, NAME, "query")?;
        Ok(ToolOutput::text(call, UNAVAILABLE.to_owned()))
    }
}

//! The safety provider interface: shields a provider serves and runs.

use async_trait::async_trait;

use super::RequestContext;
use crate::error::Result;
use crate::types::common::{JsonObject, Message};
use crate::types::safety::RunShieldResponse;
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

#[async_trait]
pub trait SafetyProvider: Send + Sync {
    async fn list_shields(&self) -> Result<Vec<ShieldDef>>;
    /// Called before `shield` is registered against this provider; may refuse.
    async fn register_shield(&self, shield: &ShieldDefWithProvider) -> Result<()>;
    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        params: JsonObject,
        ctx: &RequestContext,
    ) -> Result<RunShieldResponse>;
    async fn shutdown(&self) {}
}

//! `/models/*`, `/shields/*`, `/memory_banks/*`: the three routing tables. Lists answer a plain
//! JSON array, `get` answers `null` for an unknown id, and `register` answers `null` as
//! upstream's did.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use super::{Args, Group, Method, Reply, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::memory_banks::RegisterMemoryBankRequest;
use crate::types::models::RegisterModelRequest;
use crate::types::shields::RegisterShieldRequest;

const MODELS: Group = Group::Api(Api::Models);
const SHIELDS: Group = Group::Api(Api::Shields);
const BANKS: Group = Group::Api(Api::MemoryBanks);

pub fn operations() -> Vec<Method> {
    vec![
        op!(GET "/models/list", MODELS, |s, _, _| async move { Reply::json(&s.models.list().await?) }.boxed()),
        op!(GET "/models/get", MODELS, |s, a, _| async move {
            Reply::json(&s.models.get(&a.required("identifier")?).await?)
        }
        .boxed()),
        op!(POST "/models/register", MODELS, |s, a, c| register_model(s, a, c).boxed()),
        op!(GET "/shields/list", SHIELDS, |s, _, _| async move { Reply::json(&s.shields.list().await?) }.boxed()),
        op!(GET "/shields/get", SHIELDS, |s, a, _| async move {
            Reply::json(&s.shields.get(&a.required("shield_type")?).await?)
        }
        .boxed()),
        op!(POST "/shields/register", SHIELDS, |s, a, c| register_shield(s, a, c).boxed()),
        op!(GET "/memory_banks/list", BANKS, |s, _, _| async move { Reply::json(&s.memory_banks.list().await?) }.boxed()),
        op!(GET "/memory_banks/get", BANKS, |s, a, _| async move {
            Reply::json(&s.memory_banks.get(&a.required("identifier")?).await?)
        }
        .boxed()),
        op!(POST "/memory_banks/register", BANKS, |s, a, c| register_bank(s, a, c).boxed()),
    ]
}

async fn register_model(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let request: RegisterModelRequest = args.body()?;
    stack.models.register(request.model).await?;
    Reply::json(&Value::Null)
}

async fn register_shield(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let request: RegisterShieldRequest = args.body()?;
    stack.shields.register(request.shield).await?;
    Reply::json(&Value::Null)
}

async fn register_bank(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let request: RegisterMemoryBankRequest = args.body()?;
    stack.memory_banks.register(request.memory_bank).await?;
    Reply::json(&Value::Null)
}

//! `/safety/run_shield`: routed by shield type to the provider that serves it.

use std::sync::Arc;

use futures::FutureExt;

use super::{Args, Group, Method, Reply, ensure_served, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::safety::RunShieldRequest;

pub fn operations() -> Vec<Method> {
    vec![op!(POST "/safety/run_shield", Group::Api(Api::Safety), |s, a, c| run_shield(s, a, c).boxed())]
}

async fn run_shield(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Safety)?;
    let request: RunShieldRequest = args.body()?;
    let (shield, provider) = stack.shields.resolve(&request.shield_type).await?;
    let params = request.params.unwrap_or_default();
    Reply::json(&provider.run_shield(&shield, request.messages, params, &ctx).await?)
}

//! `/safety/run_shield`: routed by shield type to the provider that serves it.

use std::sync::Arc;

use futures::FutureExt;

use super::{Args, Group, Method, Reply, ensure_served, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::telemetry::attributes;
use crate::types::safety::RunShieldRequest;

pub fn operations() -> Vec<Method> {
    vec![op!(POST "/safety/run_shield", Group::Api(Api::Safety), |s, a, c| run_shield(s, a, c).boxed())]
}

async fn run_shield(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Safety)?;
    let request: RunShieldRequest = args.body()?;
    let (shield, provider) = stack.shields.resolve(&request.shield_type).await?;
    let params = request.params.unwrap_or_default();
    let span = ctx.span_with("safety.run_shield", attributes([("shield_id", shield.identifier.as_str())]));
    let ctx = ctx.within(&span);
    Reply::json(&span.record(provider.run_shield(&shield, request.messages, params, &ctx).await)?)
}

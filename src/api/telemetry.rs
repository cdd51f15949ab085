//! `/telemetry/log_event` and `/telemetry/get_trace`.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use super::{Args, Group, Method, Reply, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::telemetry::LogEventRequest;

const G: Group = Group::Api(Api::Telemetry);

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/telemetry/log_event", G, |s, a, c| log_event(s, a, c).boxed()),
        op!(GET "/telemetry/get_trace", G, |s, a, c| get_trace(s, a, c).boxed()),
    ]
}

async fn log_event(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let Some(telemetry) = stack.telemetry.clone() else { return Err(stack.not_served(Api::Telemetry)) };
    let request: LogEventRequest = args.body()?;
    telemetry.log_event(request.event).await?;
    Reply::json(&Value::Null)
}

async fn get_trace(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let Some(telemetry) = stack.telemetry.clone() else { return Err(stack.not_served(Api::Telemetry)) };
    let trace_id = args.required("trace_id")?;
    Reply::json(&telemetry.get_trace(&trace_id).await?)
}

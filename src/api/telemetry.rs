//! `/telemetry/log_event` and `/telemetry/get_trace`.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use super::{Args, Group, Method, Reply, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::telemetry::short_id;
use crate::types::telemetry::{Event, LogEventRequest, StructuredLogPayload};

const G: Group = Group::Api(Api::Telemetry);

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/telemetry/log_event", G, |s, a, c| log_event(s, a, c).boxed()),
        op!(GET "/telemetry/get_trace", G, |s, a, c| get_trace(s, a, c).boxed()),
    ]
}

/// A client's event joins the trace it names; one that names none (empty ids) joins the trace
/// of this call. It goes through the same queue as the stack's own spans.
async fn log_event(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    let Some(telemetry) = stack.telemetry.clone() else { return Err(stack.not_served(Api::Telemetry)) };
    let mut request: LogEventRequest = args.body()?;
    let here = ctx.trace.span_id().unwrap_or_default().to_owned();
    let (trace_id, span_id) = match &mut request.event {
        Event::UnstructuredLog(e) => (&mut e.trace_id, &mut e.span_id),
        Event::Metric(e) => (&mut e.trace_id, &mut e.span_id),
        Event::StructuredLog(e) => {
            // A span the client opens without ids gets a fresh id under this call's span.
            if let StructuredLogPayload::SpanStart(start) = &mut e.payload {
                if e.trace_id.is_empty() && e.span_id.is_empty() && ctx.trace.is_active() {
                    e.span_id = short_id();
                    start.parent_span_id.get_or_insert_with(|| here.clone());
                }
            }
            (&mut e.trace_id, &mut e.span_id)
        }
    };
    if trace_id.is_empty() {
        trace_id.push_str(ctx.trace.trace_id().unwrap_or_default());
        if span_id.is_empty() {
            span_id.push_str(&here);
        }
    }
    if ctx.trace.is_active() {
        ctx.trace.emit(request.event);
    } else {
        telemetry.log_event(request.event).await?;
    }
    Reply::json(&Value::Null)
}

async fn get_trace(stack: Arc<Stack>, args: Args, _ctx: RequestContext) -> Result<Reply> {
    let Some(telemetry) = stack.telemetry.clone() else { return Err(stack.not_served(Api::Telemetry)) };
    let trace_id = args.required("trace_id")?;
    Reply::json(&telemetry.get_trace(&trace_id).await?)
}

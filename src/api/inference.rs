//! `/inference/*`: the inference router. The model id picks the provider; an unknown id is a
//! 400 naming the ids that are served, raised before any streaming starts.

use std::sync::Arc;

use futures::FutureExt;

use super::{Args, Group, Method, Reply, ensure_served, event_stream, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::telemetry::{SpanGuard, attributes};
use crate::types::inference::{ChatCompletionRequest, CompletionRequest, EmbeddingsRequest};

const G: Group = Group::Api(Api::Inference);

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/inference/chat_completion", G, |s, a, c| chat_completion(s, a, c).boxed()),
        op!(POST "/inference/completion", G, |s, a, c| completion(s, a, c).boxed()),
        op!(POST "/inference/embeddings", G, |s, a, c| embeddings(s, a, c).boxed()),
    ]
}

async fn chat_completion(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let request: ChatCompletionRequest = args.body()?;
    let (model, provider) = stack.models.resolve(&request.model).await?;
    let span = model_span(&ctx, "inference.chat_completion", &request.model, request.is_stream());
    let ctx = ctx.within(&span);
    if request.is_stream() {
        let stream = span.record(provider.chat_completion_stream(&model, request, &ctx).await)?;
        Ok(event_stream(span.wrap_stream(stream)))
    } else {
        Reply::json(&span.record(provider.chat_completion(&model, request, &ctx).await)?)
    }
}

/// The child span of one model call.
fn model_span(ctx: &RequestContext, name: &str, model: &str, stream: bool) -> SpanGuard {
    if !ctx.trace.is_active() {
        return SpanGuard::noop();
    }
    ctx.span_with(name, attributes([("model_id", model), ("stream", if stream { "true" } else { "false" })]))
}

async fn completion(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let request: CompletionRequest = args.body()?;
    let (model, provider) = stack.models.resolve(&request.model).await?;
    let span = model_span(&ctx, "inference.completion", &request.model, request.is_stream());
    let ctx = ctx.within(&span);
    if request.is_stream() {
        let stream = span.record(provider.completion_stream(&model, request, &ctx).await)?;
        Ok(event_stream(span.wrap_stream(stream)))
    } else {
        Reply::json(&span.record(provider.completion(&model, request, &ctx).await)?)
    }
}

async fn embeddings(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let request: EmbeddingsRequest = args.body()?;
    let (model, provider) = stack.models.resolve(&request.model).await?;
    let span = model_span(&ctx, "inference.embeddings", &request.model, false);
    let ctx = ctx.within(&span);
    Reply::json(&span.record(provider.embeddings(&model, request.contents, &ctx).await)?)
}

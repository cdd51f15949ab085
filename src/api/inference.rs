//! `/inference/*`: the inference router. The model id picks the provider; an unknown id is a
//! 400 naming the ids that are served, raised before any streaming starts.

use std::sync::Arc;

use futures::FutureExt;

use super::{Args, Group, Method, Reply, ensure_served, event_stream, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
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
    if request.is_stream() {
        let stream = provider.chat_completion_stream(&model, request, &ctx).await?;
        Ok(event_stream(stream))
    } else {
        Reply::json(&provider.chat_completion(&model, request, &ctx).await?)
    }
}

async fn completion(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let request: CompletionRequest = args.body()?;
    let (model, provider) = stack.models.resolve(&request.model).await?;
    if request.is_stream() {
        let stream = provider.completion_stream(&model, request, &ctx).await?;
        Ok(event_stream(stream))
    } else {
        Reply::json(&provider.completion(&model, request, &ctx).await?)
    }
}

async fn embeddings(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let request: EmbeddingsRequest = args.body()?;
    let (model, provider) = stack.models.resolve(&request.model).await?;
    Reply::json(&provider.embeddings(&model, request.contents, &ctx).await?)
}

//! `/v1/*`: OpenAI-compatible routes over the same routing tables and providers as the Llama
//! Stack routes, so `OpenAI`'s clients (and this stack's own `remote::openai` provider) can use
//! a stack. The server answers these routes' errors in `OpenAI`'s shape and closes their streams
//! with `data: [DONE]` (see `server::response::Dialect`).

mod request;
mod response;
mod stop;

use std::sync::Arc;

use futures::{FutureExt, StreamExt};

use self::request::{ChatRequest, CompletionBody, EmbeddingsBody};
use self::response::{ChatChunker, Head};
use super::{Args, Group, Method, Reply, ensure_served, event_stream, op};
use crate::config::Api;
use crate::error::{Error, FieldIssue, Result};
use crate::providers::RequestContext;
use crate::providers::inference::InferenceProvider;
use crate::stack::Stack;
use crate::types::models::ModelDefWithProvider;

const G: Group = Group::Extension("openai");

pub fn operations() -> Vec<Method> {
    vec![
        op!(GET "/v1/models", G, |s, _, _| models(s).boxed()),
        op!(POST "/v1/chat/completions", G, |s, a, c| chat_completions(s, a, c).boxed()),
        op!(POST "/v1/completions", G, |s, a, c| completions(s, a, c).boxed()),
        op!(POST "/v1/embeddings", G, |s, a, c| embeddings(s, a, c).boxed()),
    ]
}

/// The model and its provider; an unknown model is a 400 on `model` with code `model_not_found`.
async fn resolve(stack: &Stack, model: &str) -> Result<(ModelDefWithProvider, Arc<dyn InferenceProvider>)> {
    stack.models.resolve(model).await.map_err(|e| match e {
        Error::InvalidValue(msg) => Error::Validation(vec![FieldIssue {
            loc: vec!["body".into(), "model".into()],
            msg,
            kind: "model_not_found".into(),
        }]),
        other => other,
    })
}

async fn models(stack: Arc<Stack>) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let mut seen = std::collections::HashSet::new();
    let models: Vec<(String, String)> = stack
        .models
        .list()
        .await?
        .into_iter()
        // A model served by several providers is routed to the first; list it once.
        .filter(|m| seen.insert(m.identifier.clone()))
        .map(|m| (m.identifier, m.provider_id))
        .collect();
    Reply::json(&response::model_list(&models))
}

async fn chat_completions(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let body: ChatRequest = args.body()?;
    let stops = body.common.stop_sequences()?;
    let request = body.into_request()?;
    let (model, provider) = resolve(&stack, &request.model).await?;
    let head = Head::new("chatcmpl", &request.model);
    if request.is_stream() {
        let mut events = provider.chat_completion_stream(&model, request, &ctx).await?;
        if !stops.is_empty() {
            events = stop::chat_events(events, stops);
        }
        let mut chunker = ChatChunker::new(head);
        let chunks = events.filter_map(move |item| {
            let out = match item {
                Ok(event) => chunker.event(&event).map(Ok),
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        });
        Ok(event_stream(chunks))
    } else {
        let answer = provider.chat_completion(&model, request, &ctx).await?;
        let (message, logprobs) = stop::cut_answer(answer.completion_message, answer.logprobs, &stops);
        Reply::json(&response::chat_completion(&head, &message, logprobs.as_deref()))
    }
}

async fn completions(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let body: CompletionBody = args.body()?;
    let stops = body.common.stop_sequences()?;
    let request = body.into_request()?;
    let (model, provider) = resolve(&stack, &request.model).await?;
    let head = Head::new("cmpl", &request.model);
    if request.is_stream() {
        let mut chunks = provider.completion_stream(&model, request, &ctx).await?;
        if !stops.is_empty() {
            chunks = stop::completion_chunks(chunks, stops);
        }
        let mut offset = 0;
        Ok(event_stream(chunks.map(move |item| {
            item.map(|c| {
                let chunk = response::completion_chunk(&head, &c, offset);
                offset += c.delta.chars().count();
                chunk
            })
        })))
    } else {
        let answer = provider.completion(&model, request, &ctx).await?;
        let (message, logprobs) = stop::cut_answer(answer.completion_message, answer.logprobs, &stops);
        Reply::json(&response::completion(&head, &message, logprobs.as_deref()))
    }
}

async fn embeddings(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Inference)?;
    let body: EmbeddingsBody = args.body()?;
    let (model_id, contents, base64) = body.into_parts()?;
    let (model, provider) = resolve(&stack, &model_id).await?;
    let answer = provider.embeddings(&model, contents, &ctx).await?;
    Reply::json(&response::embeddings(&model_id, &answer.embeddings, base64))
}

//! The inference provider interface. The router resolves a model id to a provider and hands it
//! the registered model, so a provider never has to look up ids itself.

pub mod bedrock;
pub mod chat_stream;
pub mod client;
#[cfg(feature = "embedded")]
pub mod embedded;
mod http_util;
pub mod model_map;
pub mod ollama;
pub mod openai;
pub mod sse;
pub mod text;
pub mod tgi;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::RequestContext;
use crate::error::{Error, Result};
use crate::types::common::InterleavedTextMedia;
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponse, ChatCompletionResponseStreamChunk, CompletionRequest,
    CompletionResponse, CompletionResponseStreamChunk, EmbeddingsResponse,
};
use crate::types::models::{ModelDef, ModelDefWithProvider};

pub type ChatStream = BoxStream<'static, Result<ChatCompletionResponseStreamChunk>>;
pub type CompletionStream = BoxStream<'static, Result<CompletionResponseStreamChunk>>;

#[async_trait]
pub trait InferenceProvider: Send + Sync {
    /// The models this provider serves without being told (what its backend has available).
    async fn list_models(&self) -> Result<Vec<ModelDef>>;

    /// Called before `model` is registered against this provider. Refuse with an error when the
    /// backend cannot serve `model.llama_model`.
    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()>;

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse>;

    /// Starts a streamed chat completion. Errors found before the first chunk (bad request,
    /// backend down) are returned here so they reach the client as an ordinary error.
    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatStream>;

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionResponse>;

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream>;

    async fn embeddings(
        &self,
        model: &ModelDefWithProvider,
        contents: Vec<InterleavedTextMedia>,
        ctx: &RequestContext,
    ) -> Result<EmbeddingsResponse> {
        let _ = (contents, ctx);
        Err(Error::not_implemented(format!(
            "provider `{}` does not compute embeddings (model `{}`)",
            model.provider_id, model.identifier
        )))
    }

    /// Releases connections and background work; called once at shutdown.
    async fn shutdown(&self) {}
}

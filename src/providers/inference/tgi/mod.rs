//! `remote::tgi`, `remote::hf::serverless` and `remote::hf::endpoint`: inference through Hugging
//! Face's text-generation-inference (TGI) API, on a server of one's own, on the serverless
//! Inference API, or on a dedicated Inference Endpoint. Each serves exactly one model. The
//! prompt is rendered here in Llama 3's format and sent as text; the reply is parsed back into a
//! message, tool calls included.

mod config;
mod convert;
mod endpoint;
mod models;
mod stream;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::Value;

use self::config::{RawConfig, Settings, Source};
use self::endpoint::Endpoint;
use self::models::Served;
use self::wire::{GenerateAnswer, Generated, Info};
use super::client::{Client, Service};
use super::sse::SseStream;
use super::{ChatStream, CompletionStream, InferenceProvider, text};
use crate::error::{Error, Result};
use crate::prompt::Llama3Tokenizer;
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::{InterleavedTextMedia, JsonObject, Message, SamplingParams};
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse, LogProbConfig,
};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// A TGI server (one's own, or an Inference Endpoint's), as messages name it.
static TGI: Service = Service::new("TGI", "api_token", "");

/// The serverless Inference API, as messages name it.
static SERVERLESS: Service = Service::new("the Hugging Face Inference API", "api_token", "");

/// The three provider types.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Tgi,
    Serverless,
    Endpoint,
}

/// Builds `remote::tgi`. The server is first asked what it serves when the model list is read,
/// so a server that is down does not stop the stack from starting.
pub fn build_tgi(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(args, Flavor::Tgi)
}

/// Builds `remote::hf::serverless`.
pub fn build_serverless(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(args, Flavor::Serverless)
}

/// Builds `remote::hf::endpoint`. The endpoint is looked up on first use, not here: one that is
/// still starting would otherwise hold up the whole stack.
pub fn build_endpoint(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(args, Flavor::Endpoint)
}

fn build(args: BuildArgs, flavor: Flavor) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = TgiInference::new(&args.provider_id, &args.config, flavor).await?;
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// The routes a server generates on: TGI's own, or the serverless API's single route per model
/// that takes `stream` in the body.
#[derive(Debug, Clone, Copy)]
enum Routes {
    Tgi,
    Serverless,
}

impl Routes {
    fn path(self, stream: bool) -> &'static str {
        match (self, stream) {
            (Self::Tgi, false) => "/generate",
            (Self::Tgi, true) => "/generate_stream",
            (Self::Serverless, _) => "",
        }
    }

    fn stream_flag(self, stream: bool) -> Option<bool> {
        matches!(self, Self::Serverless).then_some(stream)
    }
}

/// A server found and asked what it serves.
struct Target {
    client: Client,
    routes: Routes,
    served: Served,
}

/// What to render the prompt from.
enum Prompt<'a> {
    Chat(&'a ChatCompletionRequest),
    Completion(&'a InterleavedTextMedia),
}

/// An inference provider backed by a TGI server.
pub struct TgiInference {
    provider_id: String,
    settings: Settings,
    endpoint: Option<Endpoint>,
    /// Counts prompt tokens so the reply's budget fits the server's total; without it the server
    /// applies its own limit.
    tokenizer: Option<Arc<Llama3Tokenizer>>,
    /// The server once found; cleared when it stops answering, so it is found again.
    target: tokio::sync::Mutex<Option<Arc<Target>>>,
    /// Set while the server is unreachable, so the warning is logged once per outage.
    warned: AtomicBool,
}

impl TgiInference {
    async fn new(provider_id: &str, config: &JsonObject, flavor: Flavor) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let raw: RawConfig = typed_config(config, &at)?;
        let settings = match flavor {
            Flavor::Tgi => raw.tgi(&at)?,
            Flavor::Serverless => raw.serverless(&at)?,
            Flavor::Endpoint => raw.endpoint(&at)?,
        };
        let endpoint = match &settings.source {
            Source::Endpoint { api_url, namespace, name, wait } => Some(Endpoint::new(
                provider_id,
                api_url.clone(),
                namespace.clone(),
                name.clone(),
                settings.api_token.clone(),
                *wait,
            )?),
            _ => None,
        };
        let tokenizer = match &settings.tokenizer {
            None => None,
            Some(path) => {
                let path = path.clone();
                let shown = path.display().to_string();
                let loaded = tokio::task::spawn_blocking(move || Llama3Tokenizer::from_file(&path))
                    .await
                    .map_err(|e| Error::internal(format!("loading the tokenizer `{shown}`: {e}")))?;
                Some(Arc::new(loaded.map_err(|e| {
                    Error::config(format!("`{at}.tokenizer`: cannot load a Llama 3 tokenizer from `{shown}`: {e}"))
                })?))
            }
        };
        Ok(Self {
            provider_id: provider_id.to_owned(),
            settings,
            endpoint,
            tokenizer,
            target: tokio::sync::Mutex::new(None),
            warned: AtomicBool::new(false),
        })
    }

    fn client(&self, service: &'static Service, url: String) -> Result<Client> {
        Client::new(&self.provider_id, service, url, self.settings.timeout, self.settings.api_token.clone())
    }

    /// Where requests go, for messages.
    fn server(&self) -> String {
        match &self.settings.source {
            Source::Tgi { url } => format!("TGI at {url}"),
            Source::Serverless { model_url, .. } => format!("the Hugging Face Inference API at {model_url}"),
            Source::Endpoint { namespace, name, .. } => format!("Inference Endpoint `{namespace}/{name}`"),
        }
    }

    fn the_endpoint(&self) -> Result<&Endpoint> {
        self.endpoint.as_ref().ok_or_else(|| Error::internal("an Inference Endpoint provider without its endpoint"))
    }

    /// Finds the server and what it serves.
    async fn resolve(&self) -> Result<Target> {
        match &self.settings.source {
            Source::Tgi { url } => {
                let client = self.client(&TGI, url.clone())?;
                let info: Info = client.list("/info").await?;
                let repo = info
                    .model_id
                    .filter(|m| !m.trim().is_empty())
                    .ok_or_else(|| client.origin.bad_answer("/info", "it names no `model_id`"))?;
                Ok(Target { served: Served::new(&repo, info.max_total_tokens), client, routes: Routes::Tgi })
            }
            Source::Serverless { model_url, repo } => {
                let client = self.client(&SERVERLESS, model_url.clone())?;
                // Upstream read the limit from the model's `/info` and failed to start without
                // it. The serverless API does not always answer there; then no limit is assumed
                // (a guessed one would cut replies short or refuse prompts the model takes) and
                // the service applies its own.
                let max_total = match client.list::<Info>("/info").await {
                    Ok(info) => info.max_total_tokens,
                    Err(e) => {
                        tracing::debug!(provider = %self.provider_id, "no token limit from {model_url}/info: {e}");
                        None
                    }
                };
                Ok(Target { served: Served::new(repo, max_total), client, routes: Routes::Serverless })
            }
            Source::Endpoint { .. } => {
                let info = self.the_endpoint()?.ready().await?;
                let url = info.url.as_deref().unwrap_or_default().trim_end_matches('/').to_owned();
                let client = self.client(&TGI, url)?;
                let max_total = match info.max_total_tokens {
                    Some(n) => Some(n),
                    None => client.list::<Info>("/info").await.ok().and_then(|i| i.max_total_tokens),
                };
                Ok(Target { served: Served::new(&info.repo, max_total), client, routes: Routes::Tgi })
            }
        }
    }

    async fn target(&self) -> Result<Arc<Target>> {
        let mut slot = self.target.lock().await;
        if let Some(t) = slot.as_ref() {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(self.resolve().await?);
        self.warned.store(false, Ordering::Relaxed);
        *slot = Some(Arc::clone(&t));
        Ok(t)
    }

    /// After a failure: a server that stopped answering is found again next time (a restarted
    /// TGI may serve another model; an endpoint may have been paused).
    async fn after<T>(&self, target: &Arc<Target>, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::Unavailable { .. })) {
            let mut slot = self.target.lock().await;
            if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, target)) {
                *slot = None;
            }
        }
        result
    }

    /// What the server serves, asking as little as possible: the serverless model is in the
    /// config, and an endpoint's description names its model even while it is not running.
    async fn served(&self) -> Result<Served> {
        match &self.settings.source {
            Source::Serverless { repo, .. } => Ok(Served::new(repo, None)),
            Source::Endpoint { .. } => {
                if let Ok(slot) = self.target.try_lock() {
                    if let Some(t) = slot.as_ref() {
                        return Ok(t.served.clone());
                    }
                }
                let info = self.the_endpoint()?.describe().await?;
                Ok(Served::new(&info.repo, info.max_total_tokens))
            }
            Source::Tgi { .. } => Ok(self.target().await?.served.clone()),
        }
    }

    fn note_unreachable(&self, e: &Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                provider = %self.provider_id,
                "{} did not say which model it serves ({e}); it will be listed once it does",
                self.server()
            );
        }
    }

    fn check(&self, served: &Served, model: &ModelDefWithProvider) -> Result<()> {
        if served.accepts(model) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "model `{}` (llama_model `{}`) cannot be served by provider `{}`: {} serves only `{}` \
             (Hugging Face repository `{}`)",
            model.identifier,
            model.llama_model,
            self.provider_id,
            self.server(),
            served.model,
            served.repo
        )))
    }

    fn render(&self, prompt: &Prompt<'_>, served: &Served) -> Result<String> {
        let text_only = |at: String| {
            Error::invalid(format!(
                "`{at}`: provider `{}` sends TGI a text prompt and cannot pass images",
                self.provider_id
            ))
        };
        match prompt {
            Prompt::Chat(req) => {
                for (i, m) in req.messages.iter().enumerate() {
                    if m.content().has_media() {
                        return Err(text_only(format!("messages[{i}].content")));
                    }
                    if let Message::User(u) = m {
                        if u.context.as_ref().is_some_and(InterleavedTextMedia::has_media) {
                            return Err(text_only(format!("messages[{i}].context")));
                        }
                    }
                }
                crate::prompt::render_chat_prompt(req, &served.model)
            }
            Prompt::Completion(content) => {
                if content.has_media() {
                    return Err(text_only("content".into()));
                }
                Ok(crate::prompt::render_completion_prompt(content))
            }
        }
    }

    /// The prompt's length in tokens, when a tokenizer is configured.
    async fn count(&self, prompt: &str) -> Result<Option<u64>> {
        let Some(tokenizer) = &self.tokenizer else { return Ok(None) };
        let tokenizer = Arc::clone(tokenizer);
        let text = prompt.to_owned();
        let n = tokio::task::spawn_blocking(move || tokenizer.encode(&text, true).len())
            .await
            .map_err(|e| Error::internal(format!("counting prompt tokens: {e}")))?;
        Ok(u64::try_from(n).ok())
    }

    /// Finds the server, checks the model is the one it serves, and builds the request body.
    async fn prepare(
        &self,
        model: &ModelDefWithProvider,
        prompt: Prompt<'_>,
        sampling: &SamplingParams,
        logprobs: Option<&LogProbConfig>,
        stream: bool,
    ) -> Result<(Arc<Target>, Value)> {
        let target = self.target().await?;
        self.check(&target.served, model)?;
        let text = self.render(&prompt, &target.served)?;
        let prompt_tokens = self.count(&text).await?;
        let max_new = convert::max_new_tokens(sampling.max_tokens, target.served.max_total_tokens, prompt_tokens)
            .map_err(|m| {
                Error::invalid(format!("model `{}` on provider `{}`: {m}", model.identifier, self.provider_id))
            })?;
        let body = convert::body(
            &text,
            sampling,
            max_new,
            convert::top_n_tokens(logprobs)?,
            target.routes.stream_flag(stream),
        );
        Ok((target, body))
    }

    async fn generate(&self, target: &Arc<Target>, body: &Value, ctx: &RequestContext) -> Result<Generated> {
        let path = target.routes.path(false);
        let answer = target.client.post::<GenerateAnswer>(path, body, &target.served.model, ctx).await;
        self.after(target, answer)
            .await?
            .into_one()
            .ok_or_else(|| target.client.origin.bad_answer(path, "an empty list"))
    }

    async fn generate_stream(
        &self,
        target: &Arc<Target>,
        body: &Value,
        ctx: &RequestContext,
        with_logprobs: bool,
    ) -> Result<text::Pieces> {
        let path = target.routes.path(true);
        let events: Result<SseStream> = target.client.post_stream(path, body, &target.served.model, ctx).await;
        let events = self.after(target, events).await?;
        let pieces = stream::pieces(events, target.client.origin.clone(), path, with_logprobs);
        self.after(target, stream::started(pieces).await).await
    }
}

#[async_trait]
impl InferenceProvider for TgiInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        match self.served().await {
            Ok(served) => Ok(vec![served.listing()]),
            Err(e) => {
                // An empty list lets the stack start; requests then say what is wrong.
                self.note_unreachable(&e);
                Ok(Vec::new())
            }
        }
    }

    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        match self.served().await {
            Ok(served) => self.check(&served, model),
            // The model is checked again on every request, so a server that is down for now
            // does not stop the stack from starting.
            Err(e @ (Error::Unavailable { .. } | Error::Timeout(_))) => {
                tracing::warn!(
                    provider = %self.provider_id,
                    "cannot check that {} serves model `{}` ({e}); it is checked on first use",
                    self.server(),
                    model.identifier
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let sampling = request.sampling();
        let logprobs = request.logprobs.as_ref();
        let (target, body) = self.prepare(model, Prompt::Chat(&request), &sampling, logprobs, false).await?;
        let reply = convert::reply(self.generate(&target, &body, ctx).await?, logprobs.is_some());
        Ok(ChatCompletionResponse {
            completion_message: text::assistant_message(reply.text, reply.stop_reason, target.served.llama3),
            logprobs: reply.logprobs,
        })
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let sampling = request.sampling();
        let logprobs = request.logprobs.as_ref();
        let (target, body) = self.prepare(model, Prompt::Chat(&request), &sampling, logprobs, true).await?;
        let pieces = self.generate_stream(&target, &body, ctx, logprobs.is_some()).await?;
        Ok(text::chat_events(pieces, target.served.llama3))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let sampling = request.sampling();
        let logprobs = request.logprobs.as_ref();
        let (target, body) =
            self.prepare(model, Prompt::Completion(&request.content), &sampling, logprobs, false).await?;
        let reply = convert::reply(self.generate(&target, &body, ctx).await?, logprobs.is_some());
        Ok(CompletionResponse {
            completion_message: text::assistant_message(reply.text, reply.stop_reason, false),
            logprobs: reply.logprobs,
        })
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        let sampling = request.sampling();
        let logprobs = request.logprobs.as_ref();
        let (target, body) =
            self.prepare(model, Prompt::Completion(&request.content), &sampling, logprobs, true).await?;
        let pieces = self.generate_stream(&target, &body, ctx, logprobs.is_some()).await?;
        Ok(text::completion_chunks(pieces))
    }
}

//! `remote::openai`: inference through any server that speaks `OpenAI`'s HTTP API (`/models`,
//! `/chat/completions`, `/completions`, `/embeddings`): vLLM's and llama.cpp's servers,
//! LM Studio, `OpenAI` itself, or another Llama Stack's `/v1` routes.

mod convert;
pub mod hosted;
mod logprobs;
mod stream;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use self::wire::{ChatAnswer, CompletionAnswer, EmbeddingAnswer, ModelList};
use super::client::{Client, Service};
use super::model_map::metadata_model;
use super::{ChatStream, CompletionStream, InferenceProvider};
use crate::error::{Error, Result};
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse, EmbeddingsResponse,
};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// An OpenAI-compatible server, as messages name it.
static SERVICE: Service = Service::new("the OpenAI-compatible server", "api_key", "openai_api_key");

/// The metadata key naming the server's model a registered model goes to.
const MODEL_KEY: &str = "openai_model";

/// The provider's config, already defaulted by the registry; a null field means its default.
#[derive(Debug, Deserialize)]
struct OpenAiConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<f64>,
}

impl OpenAiConfig {
    fn base_url(&self, at: &str) -> Result<String> {
        let url = match self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) if u.contains("://") => u.trim_end_matches('/').to_owned(),
            Some(u) => format!("http://{}", u.trim_end_matches('/')),
            None => "https://api.openai.com/v1".to_owned(),
        };
        reqwest::Url::parse(&url).map_err(|e| Error::config(format!("`{at}.url`: `{url}` is not a valid URL: {e}")))?;
        Ok(url)
    }

    fn timeout(&self, at: &str) -> Result<Duration> {
        let secs = self.timeout.unwrap_or(300.0);
        Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Error::config(format!("`{at}.timeout` must be a positive number of seconds, got {secs}")))
    }

    /// The configured model names, when the config lists them.
    fn models(&self, at: &str) -> Result<Option<Vec<String>>> {
        let Some(models) = &self.models else { return Ok(None) };
        let mut out = Vec::with_capacity(models.len());
        for (i, m) in models.iter().enumerate() {
            let m = m.trim();
            if m.is_empty() {
                return Err(Error::config(format!("`{at}.models[{i}]` must be a model name, got an empty string")));
            }
            if !out.iter().any(|o| o == m) {
                out.push(m.to_owned());
            }
        }
        Ok(Some(out))
    }
}

/// Builds the provider. It does not contact the server: the routing table asks for the models
/// right after, and a server that is down only earns a warning.
pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = OpenAiInference::new(&args.provider_id, &args.config)?;
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// An inference provider backed by an OpenAI-compatible server.
pub struct OpenAiInference {
    client: Client,
    /// The models from the config; when set, the server's `/models` is never asked.
    configured: Option<Vec<String>>,
    /// The server's name found for each registered model id.
    resolved: RwLock<HashMap<String, String>>,
    /// Set while the server is unreachable, so the warning is logged once per outage.
    warned: AtomicBool,
}

impl OpenAiInference {
    /// Reads the config (as the registry defaulted it) and sets up the HTTP client.
    pub fn new(provider_id: &str, config: &JsonObject) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let cfg: OpenAiConfig = typed_config(config, &at)?;
        let client = Client::new(provider_id, &SERVICE, cfg.base_url(&at)?, cfg.timeout(&at)?, cfg.api_key.clone())?;
        Ok(Self {
            client,
            configured: cfg.models(&at)?,
            resolved: RwLock::new(HashMap::new()),
            warned: AtomicBool::new(false),
        })
    }

    fn note_unreachable(&self, e: &Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                provider = %self.client.origin.provider,
                "the server at {} did not list its models ({e}); they will be listed once it does",
                self.client.origin.base_url
            );
        }
    }

    /// The model names the server serves: the configured list, or its `/models`.
    async fn served(&self) -> Result<Vec<String>> {
        if let Some(models) = &self.configured {
            return Ok(models.clone());
        }
        let list: ModelList = self.client.list("/models").await?;
        self.warned.store(false, Ordering::Relaxed);
        let mut seen = HashSet::new();
        Ok(list.data.into_iter().map(|m| m.id).filter(|id| !id.is_empty() && seen.insert(id.clone())).collect())
    }

    /// The server's name for `model`.
    fn name_for(&self, model: &ModelDefWithProvider) -> Result<String> {
        if let Some(name) = metadata_name(model)? {
            return Ok(name.to_owned());
        }
        if let Some(name) = self.resolved.read().ok().and_then(|m| m.get(&model.identifier).cloned()) {
            return Ok(name);
        }
        Ok(model.llama_model.clone())
    }
}

/// `metadata.openai_model`, when the model names the server's model.
fn metadata_name(model: &ModelDefWithProvider) -> Result<Option<&str>> {
    metadata_model(model, MODEL_KEY, "a model the server serves")
}

/// A model name reduced to what tells weights apart, so a Llama descriptor matches the names
/// servers give the same weights: `Llama3.1-8B-Instruct` and `meta-llama/Meta-Llama-3.1-8B-Instruct`
/// both become `llama318binstruct`.
fn weights_key(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let base = base.strip_prefix("meta-").unwrap_or(&base);
    base.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// Picks the served name a model registration goes to: the one its metadata names, else its
/// `llama_model` or identifier, else a served name for the same weights.
fn pick<'a>(model: &ModelDefWithProvider, named: Option<&str>, served: &'a [String]) -> Option<&'a String> {
    if let Some(name) = named {
        return served.iter().find(|s| *s == name);
    }
    let exact = [&model.llama_model, &model.identifier].into_iter().find_map(|want| served.iter().find(|s| *s == want));
    exact.or_else(|| {
        let key = weights_key(&model.llama_model);
        served.iter().find(|s| weights_key(s) == key)
    })
}

#[async_trait]
impl InferenceProvider for OpenAiInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        match self.served().await {
            Ok(names) => Ok(names
                .into_iter()
                .map(|name| ModelDef {
                    identifier: name.clone(),
                    llama_model: name.clone(),
                    metadata: json!({MODEL_KEY: name}).as_object().cloned().unwrap_or_default(),
                })
                .collect()),
            Err(e) => {
                // An empty list lets the stack start; registering a model still asks the server.
                self.note_unreachable(&e);
                Ok(Vec::new())
            }
        }
    }

    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        let named = metadata_name(model)?;
        let served = self.served().await.map_err(|e| match e {
            Error::InvalidValue(msg) => Error::invalid(format!(
                "{msg}; if the server cannot list its models, name them in the provider's `models` config"
            )),
            other => other,
        })?;
        let Some(name) = pick(model, named, &served) else {
            let want = named.unwrap_or(&model.llama_model);
            let list = if served.is_empty() { "none".to_owned() } else { served.join(", ") };
            return Err(Error::invalid(format!(
                "model `{}` cannot be served by provider `{}`: the server at {} has no model `{want}` (it serves: {list})",
                model.identifier, self.client.origin.provider, self.client.origin.base_url
            )));
        };
        if let Ok(mut m) = self.resolved.write() {
            m.insert(model.identifier.clone(), name.clone());
        }
        Ok(())
    }

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let name = self.name_for(model)?;
        let body = convert::chat_body(&name, &request, false)?;
        let answer: ChatAnswer = self.client.post("/chat/completions", &body, &name, ctx).await?;
        convert::chat_response(answer).map_err(|m| self.client.origin.bad_answer("/chat/completions", m))
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let name = self.name_for(model)?;
        let body = convert::chat_body(&name, &request, true)?;
        let events = self.client.post_stream("/chat/completions", &body, &name, ctx).await?;
        Ok(stream::chat_events(events, self.client.origin.clone()))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let name = self.name_for(model)?;
        let body = convert::completion_body(&name, &request, false)?;
        let answer: CompletionAnswer = self.client.post("/completions", &body, &name, ctx).await?;
        convert::completion_response(answer).map_err(|m| self.client.origin.bad_answer("/completions", m))
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        let name = self.name_for(model)?;
        let body = convert::completion_body(&name, &request, true)?;
        let events = self.client.post_stream("/completions", &body, &name, ctx).await?;
        Ok(stream::completion_chunks(events, self.client.origin.clone()))
    }

    async fn embeddings(
        &self,
        model: &ModelDefWithProvider,
        contents: Vec<InterleavedTextMedia>,
        ctx: &RequestContext,
    ) -> Result<EmbeddingsResponse> {
        if contents.is_empty() {
            return Ok(EmbeddingsResponse { embeddings: Vec::new() });
        }
        if let Some(i) = contents.iter().position(InterleavedTextMedia::has_media) {
            return Err(Error::invalid(format!("`contents[{i}]`: an OpenAI-compatible server embeds text only")));
        }
        let name = self.name_for(model)?;
        let input: Vec<String> = contents.iter().map(|c| c.as_text(" ")).collect();
        let body = json!({"model": name, "input": input, "encoding_format": "float"});
        let answer: EmbeddingAnswer = self.client.post("/embeddings", &body, &name, ctx).await?;
        embeddings_in_order(answer, input.len()).map_err(|m| self.client.origin.bad_answer("/embeddings", m))
    }
}

/// The vectors in input order (`index` says which input each is for), one per input.
fn embeddings_in_order(answer: EmbeddingAnswer, inputs: usize) -> Result<EmbeddingsResponse, String> {
    if answer.data.len() != inputs {
        return Err(format!("{} embeddings for {inputs} inputs", answer.data.len()));
    }
    let mut slots: Vec<Option<Vec<f64>>> = vec![None; inputs];
    for (pos, item) in answer.data.into_iter().enumerate() {
        let i = item.index.unwrap_or(pos);
        match slots.get_mut(i) {
            Some(slot @ None) => *slot = Some(item.embedding),
            _ => return Err(format!("embedding index {i} is out of range or repeated")),
        }
    }
    Ok(EmbeddingsResponse { embeddings: slots.into_iter().flatten().collect() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests;

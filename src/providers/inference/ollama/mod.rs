//! `remote::ollama`: inference through an Ollama server's native API (`/api/tags`, `/api/chat`,
//! `/api/generate`, `/api/embed`).
//!
//! Unlike upstream, which rendered Llama prompts itself and sent them raw, requests go through
//! Ollama's chat endpoint, so Ollama's own template and tool-call parser apply and models other
//! than Llama work too.

mod convert;
mod models;
mod ndjson;
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

use self::wire::{ChatChunk, EmbedAnswer, GenerateChunk, TagList};
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

/// Ollama, as messages name it: it takes no key, and says how to start it or get a model.
static OLLAMA: Service =
    Service::new("Ollama", "", "").with_hints("; is `ollama serve` running?", "pull it with `ollama pull {model}`");

/// The provider's config, already defaulted by the registry; a null field means its default.
#[derive(Debug, Deserialize)]
struct OllamaConfig {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    timeout: Option<f64>,
}

impl OllamaConfig {
    fn base_url(&self, at: &str) -> Result<String> {
        let url = match self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) if u.contains("://") => u.trim_end_matches('/').to_owned(),
            Some(u) => format!("http://{}", u.trim_end_matches('/')),
            None => {
                let host = self.host.as_deref().map(str::trim).filter(|h| !h.is_empty()).unwrap_or("localhost");
                let port = self.port.unwrap_or(11434);
                match host {
                    h if h.contains("://") => format!("{}:{port}", h.trim_end_matches('/')),
                    // A bare IPv6 address needs brackets in a URL.
                    h if h.contains(':') && !h.starts_with('[') => format!("http://[{h}]:{port}"),
                    h => format!("http://{h}:{port}"),
                }
            }
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
}

/// Builds the provider. It does not fail when Ollama is down: a warning is logged and the
/// models appear once Ollama answers.
pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = OllamaInference::new(&args.provider_id, &args.config)?;
        if let Err(e) = provider.client.list::<TagList>("/api/tags").await {
            provider.note_unreachable(&e);
        }
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// An Ollama-backed inference provider.
pub struct OllamaInference {
    client: Client,
    /// The tag found for each registered model id, for models registered by Llama descriptor
    /// whose upstream tag is not the one pulled.
    resolved: RwLock<HashMap<String, String>>,
    /// Set while Ollama is unreachable, so the warning is logged once per outage.
    warned: AtomicBool,
}

impl OllamaInference {
    /// Reads the config (as the registry defaulted it) and sets up the HTTP client.
    pub fn new(provider_id: &str, config: &JsonObject) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let cfg: OllamaConfig = typed_config(config, &at)?;
        let client = Client::new(provider_id, &OLLAMA, cfg.base_url(&at)?, cfg.timeout(&at)?, None)?;
        Ok(Self { client, resolved: RwLock::new(HashMap::new()), warned: AtomicBool::new(false) })
    }

    fn note_unreachable(&self, e: &Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                provider = %self.client.origin.provider,
                "Ollama at {} is not answering ({e}); its models will be listed once it is",
                self.client.origin.base_url
            );
        }
    }

    /// The Ollama tag a request for `model` goes to.
    fn tag_for(&self, model: &ModelDefWithProvider) -> Result<String> {
        if let Some(tag) = metadata_tag(model)? {
            return Ok(tag.to_owned());
        }
        if let Some(tag) = self.resolved.read().ok().and_then(|m| m.get(&model.identifier).cloned()) {
            return Ok(tag);
        }
        Ok(models::canonical_tag(&model.llama_model).unwrap_or(&model.llama_model).to_owned())
    }

    async fn pulled_tags(&self) -> Result<Vec<String>> {
        let list: TagList = self.client.list("/api/tags").await?;
        self.warned.store(false, Ordering::Relaxed);
        Ok(list.models.iter().filter_map(|m| m.tag().map(str::to_owned)).collect())
    }
}

/// `metadata.ollama_model`, when the model names its tag.
fn metadata_tag(model: &ModelDefWithProvider) -> Result<Option<&str>> {
    metadata_model(model, "ollama_model", "an Ollama model")
}

/// Lists pulled tags: a known tag under its Llama descriptor (the upstream tag preferred when
/// several hold the same weights), every other tag under its own name.
fn list_tags(tags: &[String]) -> Vec<ModelDef> {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for tag in tags.iter().filter(|t| models::is_canonical(t)).chain(tags.iter()) {
        if let Some(llama) = models::llama_for_tag(tag) {
            owner.entry(llama).or_insert(tag);
        }
    }
    let mut seen = HashSet::new();
    tags.iter()
        .filter(|t| seen.insert(t.as_str()))
        .map(|tag| {
            let metadata = json!({"ollama_model": tag}).as_object().cloned().unwrap_or_default();
            match models::llama_for_tag(tag) {
                Some(llama) if owner.get(llama) == Some(&tag.as_str()) => {
                    ModelDef { identifier: llama.to_owned(), llama_model: llama.to_owned(), metadata }
                }
                Some(llama) => ModelDef { identifier: tag.clone(), llama_model: llama.to_owned(), metadata },
                None => ModelDef { identifier: tag.clone(), llama_model: tag.clone(), metadata },
            }
        })
        .collect()
}

#[async_trait]
impl InferenceProvider for OllamaInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        match self.pulled_tags().await {
            Ok(tags) => Ok(list_tags(&tags)),
            Err(e) => {
                // An empty list lets the stack start; registering a model still checks Ollama.
                self.note_unreachable(&e);
                Ok(Vec::new())
            }
        }
    }

    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        let pulled = self.pulled_tags().await?;
        let have: HashSet<String> = pulled.iter().map(|t| models::normalize(t)).collect();
        let pulled_has = |t: &str| have.contains(&models::normalize(t));
        let named = metadata_tag(model)?;
        let upstream = models::canonical_tag(&model.llama_model);
        let found = match named {
            Some(tag) => pulled_has(tag).then(|| tag.to_owned()),
            None => upstream
                .into_iter()
                .chain([model.llama_model.as_str()])
                .find(|t| pulled_has(t))
                .map(str::to_owned)
                // Any other pulled tag of the same weights, e.g. `llama3.2:3b` for Llama3.2-3B-Instruct.
                .or_else(|| {
                    pulled.iter().find(|t| models::llama_for_tag(t) == Some(model.llama_model.as_str())).cloned()
                }),
        };
        let Some(tag) = found else {
            let want = named.or(upstream).unwrap_or(&model.llama_model);
            return Err(Error::invalid(format!(
                "model `{}` cannot be served by provider `{}`: Ollama at {} has no model `{want}`; pull it with `ollama pull {want}`",
                model.identifier, self.client.origin.provider, self.client.origin.base_url
            )));
        };
        if let Ok(mut m) = self.resolved.write() {
            m.insert(model.identifier.clone(), tag);
        }
        Ok(())
    }

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let tag = self.tag_for(model)?;
        let body = convert::chat_body(&tag, &request, false)?;
        let chunk: ChatChunk = self.client.post("/api/chat", &body, &tag, ctx).await?;
        convert::chat_response(chunk).map_err(|m| self.client.origin.bad_answer("/api/chat", m))
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let tag = self.tag_for(model)?;
        let body = convert::chat_body(&tag, &request, true)?;
        let resp = self.client.post_response("/api/chat", &body, &tag, ctx).await?;
        let lines = ndjson::decode_lines(resp.bytes_stream(), self.client.origin.clone(), "/api/chat");
        Ok(stream::chat_events(lines, self.client.origin.clone()))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let tag = self.tag_for(model)?;
        let body = convert::generate_body(&tag, &request, false)?;
        let chunk: GenerateChunk = self.client.post("/api/generate", &body, &tag, ctx).await?;
        Ok(convert::completion_response(chunk))
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        let tag = self.tag_for(model)?;
        let body = convert::generate_body(&tag, &request, true)?;
        let resp = self.client.post_response("/api/generate", &body, &tag, ctx).await?;
        let lines = ndjson::decode_lines(resp.bytes_stream(), self.client.origin.clone(), "/api/generate");
        Ok(stream::completion_chunks(lines, self.client.origin.clone()))
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
        let tag = self.tag_for(model)?;
        let input: Vec<String> = contents.iter().map(|c| c.as_text(" ")).collect();
        let body = json!({"model": tag, "input": input});
        let answer: EmbedAnswer = self.client.post("/api/embed", &body, &tag, ctx).await?;
        if answer.embeddings.len() != input.len() {
            return Err(self.client.origin.bad_answer(
                "/api/embed",
                format!("{} embeddings for {} inputs", answer.embeddings.len(), input.len()),
            ));
        }
        Ok(EmbeddingsResponse { embeddings: answer.embeddings })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use serde_json::Value;

    fn cfg(v: Value) -> OllamaConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn base_url_from_host_port_or_url() {
        assert_eq!(cfg(json!({"host": "localhost", "port": 11434})).base_url("x").unwrap(), "http://localhost:11434");
        assert_eq!(cfg(json!({"host": "::1", "port": 1})).base_url("x").unwrap(), "http://[::1]:1");
        assert_eq!(
            cfg(json!({"url": "https://o.example/base/", "port": 1})).base_url("x").unwrap(),
            "https://o.example/base"
        );
        assert_eq!(cfg(json!({"url": "gpu-box:11434"})).base_url("x").unwrap(), "http://gpu-box:11434");
        assert!(cfg(json!({"timeout": 0})).timeout("p.config").unwrap_err().to_string().contains("p.config.timeout"));
        assert_eq!(cfg(json!({"timeout": 2.5})).timeout("x").unwrap(), Duration::from_millis(2500));
    }

    #[test]
    fn listing_prefers_upstream_tags_for_descriptors() {
        let tags: Vec<String> =
            ["llama3.1:latest", "llama3.1:8b-instruct-fp16", "llama3.2:3b", "qwen2.5:7b"].map(String::from).to_vec();
        let got: Vec<(String, String)> = list_tags(&tags).into_iter().map(|m| (m.identifier, m.llama_model)).collect();
        let want = [
            ("llama3.1:latest", "Llama3.1-8B-Instruct"),
            ("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct"),
            ("Llama3.2-3B-Instruct", "Llama3.2-3B-Instruct"),
            ("qwen2.5:7b", "qwen2.5:7b"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }
}

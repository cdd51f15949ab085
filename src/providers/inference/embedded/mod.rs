//! `embedded`: inference on the CPU inside this process. A GGUF model runs on llama.cpp (built
//! from source with the crate), sentence embeddings on the in-process BERT encoder. Nothing to
//! install or start: a model missing from the cache is fetched when the provider is built.

pub mod cache;
mod generation;
mod sampling;
mod template;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use llama_cpp_2::token::LlamaToken;
use serde::Deserialize;
use serde_json::{Value, json};

use self::generation::{Engine, EngineSettings};
use self::sampling::Plan;
use self::template::ChatFormat;
use super::text::{self, assistant_message};
use super::{ChatStream, CompletionStream, InferenceProvider};
use crate::embed::SentenceEmbedder;
use crate::error::{Error, Result};
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::{CompletionMessage, InterleavedTextMedia, JsonObject, StopReason};
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse, EmbeddingsResponse,
};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// The provider's config, already defaulted by the registry; a null field means its default.
#[derive(Debug, Deserialize)]
struct EmbeddedConfig {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    embedding_model: Option<String>,
    #[serde(default)]
    threads: Option<i64>,
    #[serde(default)]
    context_length: Option<i64>,
    #[serde(default)]
    max_concurrent: Option<i64>,
}

/// A positive integer field, or its default when unset.
fn positive(value: Option<i64>, default: usize, field: &str, at: &str) -> Result<usize> {
    match value {
        None => Ok(default),
        Some(v) => usize::try_from(v)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::config(format!("`{at}.{field}` must be at least 1, got {v}"))),
    }
}

/// Builds the provider: fetches a missing model, then loads it. The first `llama stack run`
/// therefore downloads the default model, with progress on stderr.
pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = EmbeddedInference::load(&args.provider_id, &args.config).await?;
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// The loaded sentence-embedding model.
struct Embedder {
    id: String,
    model: Arc<SentenceEmbedder>,
}

/// Which of the provider's models a request is for.
enum Served<'a> {
    Generation,
    Embedding(&'a Embedder),
}

/// The embedded inference provider: one generation model and, optionally, one embedding model.
pub struct EmbeddedInference {
    provider_id: String,
    model_id: String,
    engine: Arc<Engine>,
    format: ChatFormat,
    embedder: Option<Embedder>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let work = move || {
        let _work = crate::native_work::Work::enter();
        f()
    };
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::internal(format!("model loading stopped: {e}")))?
}

impl EmbeddedInference {
    /// Reads the config (as the registry defaulted it), fetches what is missing and loads it.
    pub async fn load(provider_id: &str, config: &JsonObject) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let cfg: EmbeddedConfig = typed_config(config, &at)?;
        let settings = EngineSettings {
            threads: positive(cfg.threads, generation::default_threads(), "threads", &at)?,
            context_length: positive(cfg.context_length, 4096, "context_length", &at)?,
            max_concurrent: positive(cfg.max_concurrent, 1, "max_concurrent", &at)?,
        };
        let name = cfg.model.as_deref().map(str::trim).filter(|m| !m.is_empty()).unwrap_or(cache::SMOLLM2_135M.id);
        let file = cache::resolve(name, &at)?;
        let known = cache::known(name).map(|k| k.id);
        let provider = provider_id.to_owned();
        let model_id = file.id.clone();
        let (engine, format) = blocking(move || {
            let path = match known {
                Some(id) => cache::ensure_model(id)?,
                None => file.path,
            };
            let engine = Engine::load(&path, &provider, settings)?;
            let format = ChatFormat::of(engine.model(), &file.id)?;
            Ok((engine, format))
        })
        .await?;

        let embedder = match cfg.embedding_model.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => None,
            Some(name) => Some(load_embedder(name.to_owned()).await?),
        };
        Ok(Self { provider_id: provider_id.to_owned(), model_id, engine: Arc::new(engine), format, embedder })
    }

    /// The id the generation model is listed under.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Whether `model` names one of ours: by id, by `llama_model`, or by `metadata.model`, so
    /// another name (e.g. `Llama3.1-8B-Instruct`) can be registered as an alias.
    fn served<'a>(&'a self, model: &ModelDefWithProvider) -> Result<Served<'a>> {
        let alias = model.metadata.get("model").and_then(Value::as_str);
        let names = [model.llama_model.as_str(), model.identifier.as_str()].into_iter().chain(alias);
        for name in names {
            if name == self.model_id {
                return Ok(Served::Generation);
            }
            if let Some(e) = self.embedder.as_ref().filter(|e| e.id == name) {
                return Ok(Served::Embedding(e));
            }
        }
        let embedding = self.embedder.as_ref().map(|e| format!(" and `{}` for embeddings", e.id)).unwrap_or_default();
        Err(Error::invalid(format!(
            "model `{}` (llama_model `{}`) cannot be served by provider `{}`: it serves `{}`{embedding}; \
             to use another name for it, register the model with llama_model `{}` or metadata.model `{}`",
            model.identifier, model.llama_model, self.provider_id, self.model_id, self.model_id, self.model_id
        )))
    }

    fn generation_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        match self.served(model)? {
            Served::Generation => Ok(()),
            Served::Embedding(e) => Err(Error::invalid(format!(
                "model `{}` is the embedding model `{}`; it cannot generate text (use `{}`)",
                model.identifier, e.id, self.model_id
            ))),
        }
    }

    fn is_llama3(&self) -> bool {
        matches!(self.format, ChatFormat::Llama3 { .. })
    }

    fn chat_prompt(&self, model: &ModelDefWithProvider, request: &ChatCompletionRequest) -> Result<Vec<LlamaToken>> {
        self.generation_model(model)?;
        if let ChatFormat::Llama3 { descriptor } = &self.format {
            let text = crate::prompt::render_chat_prompt(request, descriptor)?;
            return Ok(self.engine.tokenize(&text, false, true));
        }
        if !request.tools.is_empty() {
            tracing::debug!(
                "model `{}` gets no tool definitions: its chat template has no place for them",
                model.identifier
            );
        }
        let turns = template::turns(&request.messages, &model.identifier)?;
        let prompt = self.format.render(self.engine.model(), &turns)?;
        Ok(self.engine.tokenize(&prompt, !self.starts_with_bos(&prompt), true))
    }

    /// Some templates write the beginning-of-text token themselves; it must not come twice.
    fn starts_with_bos(&self, prompt: &str) -> bool {
        let bos = self.engine.token_text(self.engine.model().vocab().bos());
        !bos.is_empty() && prompt.starts_with(&bos)
    }

    fn completion_prompt(&self, model: &ModelDefWithProvider, request: &CompletionRequest) -> Result<Vec<LlamaToken>> {
        self.generation_model(model)?;
        if request.content.has_media() {
            return Err(Error::invalid(format!(
                "`content`: model `{}` reads text only, and this holds an image",
                model.identifier
            )));
        }
        if self.is_llama3() {
            let text = crate::prompt::render_completion_prompt(&request.content);
            return Ok(self.engine.tokenize(&text, false, true));
        }
        Ok(self.engine.tokenize(&request.content.as_text(""), true, false))
    }

    /// The finished answer as an assistant message; a Llama 3 answer may hold a tool call.
    fn answer(&self, text: String, stop_reason: StopReason) -> CompletionMessage {
        assistant_message(text, stop_reason, self.is_llama3())
    }
}

/// Loads the sentence-embedding model: a folder path, or an id fetched into the model cache.
async fn load_embedder(name: String) -> Result<Embedder> {
    blocking(move || {
        // An id may hold a slash too (`sentence-transformers/all-MiniLM-L6-v2`).
        let is_path = name.starts_with(['/', '.', '~']) || crate::config::expand_home(&name).is_dir();
        let dir: PathBuf = if is_path { crate::config::expand_home(&name) } else { crate::embed::ensure_model(&name)? };
        let id = if is_path {
            dir.file_name().and_then(|n| n.to_str()).unwrap_or(name.as_str()).to_owned()
        } else {
            name.clone()
        };
        let started = std::time::Instant::now();
        let model = SentenceEmbedder::load(&dir)?;
        tracing::info!("loaded embedding model `{id}` in {:.2}s", started.elapsed().as_secs_f64());
        Ok(Embedder { id, model: Arc::new(model) })
    })
    .await
}

#[async_trait]
impl InferenceProvider for EmbeddedInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        let mut models = vec![ModelDef {
            identifier: self.model_id.clone(),
            llama_model: self.model_id.clone(),
            metadata: JsonObject::new(),
        }];
        if let Some(e) = &self.embedder {
            let metadata = json!({"embedding_dimension": e.model.dimension()});
            models.push(ModelDef {
                identifier: e.id.clone(),
                llama_model: e.id.clone(),
                metadata: metadata.as_object().cloned().unwrap_or_default(),
            });
        }
        Ok(models)
    }

    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        self.served(model).map(|_| ())
    }

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let prompt = self.chat_prompt(model, &request)?;
        let plan =
            Plan::from_params(&request.sampling())?.with_logprobs(text::logprobs_top_k(request.logprobs.as_ref())?);
        let pieces = self.engine.start(prompt, plan, self.is_llama3(), &model.identifier).await?;
        let generated = text::collect(pieces).await?;
        Ok(ChatCompletionResponse {
            completion_message: self.answer(generated.text, generated.stop_reason),
            logprobs: generated.logprobs,
        })
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let prompt = self.chat_prompt(model, &request)?;
        let plan =
            Plan::from_params(&request.sampling())?.with_logprobs(text::logprobs_top_k(request.logprobs.as_ref())?);
        let llama3 = self.is_llama3();
        let pieces = self.engine.start(prompt, plan, llama3, &model.identifier).await?;
        Ok(text::chat_events(pieces, llama3))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let prompt = self.completion_prompt(model, &request)?;
        let plan =
            Plan::from_params(&request.sampling())?.with_logprobs(text::logprobs_top_k(request.logprobs.as_ref())?);
        let pieces = self.engine.start(prompt, plan, false, &model.identifier).await?;
        let generated = text::collect(pieces).await?;
        let completion_message = assistant_message(generated.text, generated.stop_reason, false);
        Ok(CompletionResponse { completion_message, logprobs: generated.logprobs })
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        let prompt = self.completion_prompt(model, &request)?;
        let plan =
            Plan::from_params(&request.sampling())?.with_logprobs(text::logprobs_top_k(request.logprobs.as_ref())?);
        let pieces = self.engine.start(prompt, plan, false, &model.identifier).await?;
        Ok(text::completion_chunks(pieces))
    }

    async fn embeddings(
        &self,
        model: &ModelDefWithProvider,
        contents: Vec<InterleavedTextMedia>,
        _ctx: &RequestContext,
    ) -> Result<EmbeddingsResponse> {
        let embedder = match self.served(model)? {
            Served::Embedding(e) => Arc::clone(&e.model),
            Served::Generation => {
                let hint = self.embedder.as_ref().map_or_else(
                    || "this provider has no embedding model (config `embedding_model` is empty)".to_owned(),
                    |e| format!("use `{}`", e.id),
                );
                return Err(Error::invalid(format!(
                    "model `{}` generates text and computes no embeddings; {hint}",
                    model.identifier
                )));
            }
        };
        let mut texts = Vec::with_capacity(contents.len());
        for (i, c) in contents.iter().enumerate() {
            if c.has_media() {
                return Err(Error::invalid(format!("`contents[{i}]`: embedding models read text only")));
            }
            texts.push(c.as_text(" "));
        }
        let vectors = tokio::task::spawn_blocking(move || {
            let _work = crate::native_work::Work::enter();
            embedder.embed(&texts)
        })
        .await
        .map_err(|e| Error::internal(format!("embedding stopped: {e}")))??;
        Ok(EmbeddingsResponse {
            embeddings: vectors.into_iter().map(|v| v.into_iter().map(f64::from).collect()).collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_must_be_positive() {
        assert_eq!(positive(None, 3, "threads", "p.config").unwrap(), 3);
        assert_eq!(positive(Some(2), 3, "threads", "p.config").unwrap(), 2);
        let e = positive(Some(0), 3, "max_concurrent", "p.config").unwrap_err().to_string();
        assert!(e.contains("p.config.max_concurrent"), "{e}");
        assert!(generation::default_threads() >= 1);
    }
}

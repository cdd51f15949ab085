//! Hosted Llama services reached through an OpenAI-style `/completions` endpoint with a raw
//! prompt: `remote::together`, `remote::fireworks` and `remote::databricks`. The core renders the
//! Llama 3 prompt (system prompt, tool definitions, history) itself and parses the reply back into
//! a message and tool calls, so the service's own chat template plays no part: the same model
//! sees the same text whichever service runs it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::convert::{add_sampling, stop_reason};
use super::logprobs;
use super::stream::completion_pieces;
use super::wire::CompletionAnswer;
use crate::error::{Error, Result};
use crate::prompt::{render_chat_prompt, render_completion_prompt};
use crate::providers::inference::client::{Client, Origin, Service};
use crate::providers::inference::model_map::ModelMap;
use crate::providers::inference::text::{self, Pieces};
use crate::providers::inference::{ChatStream, CompletionStream, InferenceProvider};
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext};
use crate::types::common::{InterleavedTextMedia, JsonObject, SamplingParams};
use crate::types::inference::{ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse};
use crate::types::models::{ModelDef, ModelDefWithProvider};

const BOS: &str = "<|begin_of_text|>";

/// What sets one hosted service apart.
#[derive(Debug)]
pub struct Hosted {
    service: Service,
    default_url: &'static str,
    /// Appended to the configured URL.
    completions_path: &'static str,
    models: &'static [(&'static str, &'static str)],
    /// The service adds the beginning-of-text token itself; sending it too would double it.
    strip_bos: bool,
    /// Sent when the request sets no limit (the service's own default is very short).
    default_max_tokens: Option<u64>,
    /// Whether a request may go out without a key.
    key_optional: bool,
}

pub static TOGETHER: Hosted = Hosted {
    service: Service::new("Together", "api_key", "together_api_key"),
    default_url: "https://api.together.xyz/v1",
    completions_path: "/completions",
    models: &[
        ("Llama3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"),
        ("Llama3.1-70B-Instruct", "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
        ("Llama3.1-405B-Instruct", "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo"),
        ("Llama3.2-3B-Instruct", "meta-llama/Llama-3.2-3B-Instruct-Turbo"),
        ("Llama3.2-11B-Vision-Instruct", "meta-llama/Llama-3.2-11B-Vision-Instruct-Turbo"),
        ("Llama3.2-90B-Vision-Instruct", "meta-llama/Llama-3.2-90B-Vision-Instruct-Turbo"),
    ],
    strip_bos: false,
    default_max_tokens: None,
    key_optional: false,
};

/// Fireworks' API names its models `accounts/fireworks/models/<name>`.
pub static FIREWORKS: Hosted = Hosted {
    service: Service::new("Fireworks", "api_key", "fireworks_api_key"),
    default_url: "https://api.fireworks.ai/inference",
    completions_path: "/v1/completions",
    models: &[
        ("Llama3.1-8B-Instruct", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
        ("Llama3.1-70B-Instruct", "accounts/fireworks/models/llama-v3p1-70b-instruct"),
        ("Llama3.1-405B-Instruct", "accounts/fireworks/models/llama-v3p1-405b-instruct"),
        ("Llama3.2-1B-Instruct", "accounts/fireworks/models/llama-v3p2-1b-instruct"),
        ("Llama3.2-3B-Instruct", "accounts/fireworks/models/llama-v3p2-3b-instruct"),
    ],
    strip_bos: true,
    default_max_tokens: Some(512),
    key_optional: false,
};

/// A Databricks workspace's serving endpoints; `url` is `https://<workspace>/serving-endpoints`.
pub static DATABRICKS: Hosted = Hosted {
    service: Service::new("Databricks", "api_token", ""),
    default_url: "",
    completions_path: "/completions",
    models: &[
        ("Llama3.1-70B-Instruct", "databricks-meta-llama-3-1-70b-instruct"),
        ("Llama3.1-405B-Instruct", "databricks-meta-llama-3-1-405b-instruct"),
    ],
    strip_bos: false,
    default_max_tokens: None,
    key_optional: false,
};

pub fn build_together(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(&TOGETHER, args)
}

pub fn build_fireworks(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(&FIREWORKS, args)
}

pub fn build_databricks(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    build(&DATABRICKS, args)
}

fn build(kind: &'static Hosted, args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = HostedInference::new(kind, &args.provider_id, &args.config)?;
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// A string field of the (already defaulted) config; blank counts as unset.
fn config_string(config: &JsonObject, field: &str, at: &str) -> Result<Option<String>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(other) => Err(Error::config(format!("`{at}.{field}` must be a string, got {other}"))),
    }
}

fn config_timeout(config: &JsonObject, at: &str) -> Result<Duration> {
    let secs = match config.get("timeout") {
        None | Some(Value::Null) => 300.0,
        Some(v) => v.as_f64().ok_or_else(|| Error::config(format!("`{at}.timeout` must be a number, got {v}")))?,
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::config(format!("`{at}.timeout` must be a positive number of seconds, got {secs}")))
}

/// An inference provider backed by one hosted service.
pub struct HostedInference {
    kind: &'static Hosted,
    client: Client,
    models: ModelMap,
}

impl HostedInference {
    pub fn new(kind: &'static Hosted, provider_id: &str, config: &JsonObject) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let url = config_string(config, "url", &at)?.unwrap_or_else(|| kind.default_url.to_owned());
        if url.is_empty() {
            return Err(Error::config(format!("`{at}.url` is required: the {} API's base URL", kind.service.name)));
        }
        let url = url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&url).map_err(|e| Error::config(format!("`{at}.url`: `{url}` is not a valid URL: {e}")))?;
        let key = config_string(config, kind.service.key_config, &at)?;
        let client = Client::new(provider_id, &kind.service, url, config_timeout(config, &at)?, key)?;
        Ok(Self { kind, client, models: ModelMap::new(provider_id, kind.service.name, kind.models) })
    }

    fn origin(&self) -> &Origin {
        &self.client.origin
    }

    /// Refuses a request that has no key to send, saying where one goes (the service would only
    /// answer 401 after a round trip).
    fn check_key(&self, ctx: &RequestContext) -> Result<()> {
        if self.kind.key_optional || self.client.key(Some(ctx)).is_some() {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "provider `{}` has no {} API key: {}",
            self.origin().provider,
            self.kind.service.name,
            self.origin().key_hint()
        )))
    }

    /// The request body for a rendered prompt.
    fn body(&self, name: &str, prompt: &str, sampling: &SamplingParams, top_k: Option<usize>, stream: bool) -> Value {
        let prompt = if self.kind.strip_bos { prompt.strip_prefix(BOS).unwrap_or(prompt) } else { prompt };
        let mut body = Map::new();
        body.insert("model".into(), json!(name));
        body.insert("prompt".into(), json!(prompt));
        body.insert("stream".into(), json!(stream));
        add_sampling(&mut body, sampling);
        if let Some(n) = self.kind.default_max_tokens {
            body.entry("max_tokens").or_insert(json!(n));
        }
        if let Some(k) = top_k {
            body.insert("logprobs".into(), json!(k));
        }
        Value::Object(body)
    }

    async fn generate(&self, name: &str, body: &Value, ctx: &RequestContext) -> Result<text::Generated> {
        self.check_key(ctx)?;
        let path = self.kind.completions_path;
        let answer: CompletionAnswer = self.client.post(path, body, name, ctx).await?;
        let choice = answer.choices.into_iter().next().ok_or_else(|| self.origin().bad_answer(path, "no choices"))?;
        let logprobs = choice.logprobs.as_ref().map(logprobs::from_completion).and_then(logprobs::non_empty);
        Ok(text::Generated {
            text: choice.text.unwrap_or_default(),
            stop_reason: stop_reason(choice.finish_reason.as_deref(), false),
            logprobs,
        })
    }

    async fn generate_stream(&self, name: &str, body: &Value, ctx: &RequestContext) -> Result<Pieces> {
        self.check_key(ctx)?;
        let path = self.kind.completions_path;
        let events = self.client.post_stream(path, body, name, ctx).await?;
        Ok(completion_pieces(events, self.origin().clone(), path))
    }
}

fn content_text(content: &InterleavedTextMedia) -> Result<()> {
    if content.has_media() {
        return Err(Error::invalid("`content`: this provider sends text prompts; images cannot be sent"));
    }
    Ok(())
}

#[async_trait]
impl InferenceProvider for HostedInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        Ok(self.models.models())
    }

    async fn register_model(&self, model: &ModelDefWithProvider) -> Result<()> {
        self.models.name_for(model).map(|_| ())
    }

    async fn chat_completion(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let name = self.models.name_for(model)?;
        let top_k = text::logprobs_top_k(request.logprobs.as_ref())?;
        let prompt = render_chat_prompt(&request, &model.llama_model)?;
        let body = self.body(&name, &prompt, &request.sampling(), top_k, false);
        let generated = self.generate(&name, &body, ctx).await?;
        Ok(ChatCompletionResponse {
            completion_message: text::assistant_message(generated.text, generated.stop_reason, true),
            logprobs: generated.logprobs,
        })
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let name = self.models.name_for(model)?;
        let top_k = text::logprobs_top_k(request.logprobs.as_ref())?;
        let prompt = render_chat_prompt(&request, &model.llama_model)?;
        let body = self.body(&name, &prompt, &request.sampling(), top_k, true);
        Ok(text::chat_events(self.generate_stream(&name, &body, ctx).await?, true))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let name = self.models.name_for(model)?;
        content_text(&request.content)?;
        let top_k = text::logprobs_top_k(request.logprobs.as_ref())?;
        let prompt = render_completion_prompt(&request.content);
        let body = self.body(&name, &prompt, &request.sampling(), top_k, false);
        let generated = self.generate(&name, &body, ctx).await?;
        Ok(CompletionResponse {
            completion_message: text::assistant_message(generated.text, generated.stop_reason, false),
            logprobs: generated.logprobs,
        })
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        let name = self.models.name_for(model)?;
        content_text(&request.content)?;
        let top_k = text::logprobs_top_k(request.logprobs.as_ref())?;
        let prompt = render_completion_prompt(&request.content);
        let body = self.body(&name, &prompt, &request.sampling(), top_k, true);
        Ok(text::completion_chunks(self.generate_stream(&name, &body, ctx).await?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::providers::inference::sse::Sse;
    use crate::providers::inference::text::Piece;
    use crate::types::common::StopReason;

    fn provider(kind: &'static Hosted, config: &Value) -> HostedInference {
        HostedInference::new(kind, "p", config.as_object().unwrap()).unwrap()
    }

    #[test]
    fn bodies_follow_each_service() {
        let fireworks = provider(&FIREWORKS, &json!({"api_key": "k"}));
        let body = fireworks.body("m", "<|begin_of_text|>hi", &SamplingParams::default(), None, false);
        assert_eq!(body["prompt"], "hi");
        assert_eq!(body["max_tokens"], 512);
        let together = provider(&TOGETHER, &json!({}));
        let params = SamplingParams { max_tokens: Some(7), ..SamplingParams::default() };
        let body = together.body("m", "<|begin_of_text|>hi", &params, Some(2), true);
        assert_eq!(body["prompt"], "<|begin_of_text|>hi");
        assert_eq!(
            (body["max_tokens"].clone(), body["logprobs"].clone(), body["stream"].clone()),
            (json!(7), json!(2), json!(true))
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = HostedInference::new(&DATABRICKS, "db", &JsonObject::new()).err().unwrap().to_string();
        assert!(e.contains("db.config.url"), "{e}");
        let bad = json!({"url": "not a url"});
        let e = HostedInference::new(&TOGETHER, "t", bad.as_object().unwrap()).err().unwrap().to_string();
        assert!(e.contains("t.config.url"), "{e}");
        let bad = json!({"api_key": 5});
        let e = HostedInference::new(&TOGETHER, "t", bad.as_object().unwrap()).err().unwrap().to_string();
        assert!(e.contains("t.config.api_key"), "{e}");
    }

    #[test]
    fn a_missing_key_says_where_to_put_one() {
        let together = provider(&TOGETHER, &json!({}));
        let e = together.check_key(&RequestContext::default()).unwrap_err().to_string();
        assert!(e.contains("together_api_key") && e.contains("api_key"), "{e}");
        let ctx = RequestContext::from_header(Some(r#"{"together_api_key": "k"}"#));
        assert!(together.check_key(&ctx).is_ok());
        let databricks = provider(&DATABRICKS, &json!({"url": "https://x/serving-endpoints"}));
        let e = databricks.check_key(&ctx).unwrap_err().to_string();
        assert!(e.contains("api_token") && !e.contains("X-LlamaStack-ProviderData"), "{e}");
    }

    #[tokio::test]
    async fn streamed_events_become_pieces() {
        let events = vec![
            Ok(Sse::Data(json!({"choices": [{"text": "Hel"}]}))),
            Ok(Sse::Data(
                json!({"choices": [{"text": "lo", "logprobs": {"tokens": ["lo"], "token_logprobs": [-0.2]}}]}),
            )),
            Ok(Sse::Data(json!({"choices": [{"text": "", "finish_reason": "length"}]}))),
            Ok(Sse::Done),
        ];
        let origin = provider(&TOGETHER, &json!({})).origin().clone();
        let got: Vec<Piece> = completion_pieces(futures::stream::iter(events).boxed(), origin, "/completions")
            .take(3)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(got[0], Piece::Text("Hel".into()));
        assert!(matches!(&got[1], Piece::Scored(t, s) if t == "lo" && s.len() == 1));
        assert_eq!(got[2], Piece::End(StopReason::OutOfTokens));
    }
}

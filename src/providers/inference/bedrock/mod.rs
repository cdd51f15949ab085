//! `remote::bedrock`: Meta Llama models hosted on AWS Bedrock, through Bedrock Runtime's HTTP
//! API signed with `SigV4`. Chat goes through Converse (`/converse`, `/converse-stream`), with
//! Bedrock's own tool calling; completion through the models' native Llama API (`/invoke`,
//! `/invoke-with-response-stream`), which upstream left unimplemented. Embeddings are not served.
//!
//! Credentials, region and endpoint are found as boto3 finds them (see `credentials`). The
//! provider builds without them, so the stack starts; each request then says what is missing.

pub(crate) mod client;
mod convert;
pub(crate) mod credentials;
mod eventstream;
pub(crate) mod signing;
mod stream;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;

use self::client::{Client, Retry};
use self::credentials::{Env, Settings};
use self::stream::Context;
use self::wire::{ConverseAnswer, LlamaGeneration};
use super::model_map::ModelMap;
use super::{ChatStream, CompletionStream, InferenceProvider};
use crate::error::{Error, Result};
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::JsonObject;
use crate::types::inference::{ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// The Llama models Bedrock hosts, by Bedrock's model ids (upstream's list).
const MODELS: &[(&str, &str)] = &[
    ("Llama3.1-8B-Instruct", "meta.llama3-1-8b-instruct-v1:0"),
    ("Llama3.1-70B-Instruct", "meta.llama3-1-70b-instruct-v1:0"),
    ("Llama3.1-405B-Instruct", "meta.llama3-1-405b-instruct-v1:0"),
];

/// The provider's config (upstream's `BedrockConfig`, plus `endpoint_url`), already defaulted by
/// the registry; a null field means "look elsewhere" or the default.
#[derive(Debug, Deserialize)]
struct BedrockConfig {
    #[serde(default)]
    aws_access_key_id: Option<String>,
    #[serde(default)]
    aws_secret_access_key: Option<String>,
    #[serde(default)]
    aws_session_token: Option<String>,
    #[serde(default)]
    region_name: Option<String>,
    #[serde(default)]
    profile_name: Option<String>,
    #[serde(default)]
    total_max_attempts: Option<i64>,
    #[serde(default)]
    retry_mode: Option<String>,
    #[serde(default)]
    connect_timeout: Option<f64>,
    #[serde(default)]
    read_timeout: Option<f64>,
    #[serde(default)]
    endpoint_url: Option<String>,
}

impl BedrockConfig {
    fn seconds(value: Option<f64>, field: &str, at: &str) -> Result<Duration> {
        let secs = value.unwrap_or(60.0);
        Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Error::config(format!("`{at}.{field}` must be a positive number of seconds, got {secs}")))
    }

    /// Attempts per call: `total_max_attempts`, else `AWS_MAX_ATTEMPTS`, else what the retry mode
    /// (`retry_mode`, else `AWS_RETRY_MODE`, else `standard`) gives: 3, or 5 in `legacy` mode, as
    /// in botocore. `adaptive` retries like `standard`; there is no client-side rate limiter.
    fn retry(&self, at: &str, env: Env<'_>) -> Result<Retry> {
        let mode = match self.retry_mode.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => (m.to_owned(), format!("`{at}.retry_mode`")),
            None => (env("AWS_RETRY_MODE").unwrap_or_else(|| "standard".into()), "AWS_RETRY_MODE".to_owned()),
        };
        let default = match mode.0.trim() {
            "standard" | "adaptive" => 3,
            "legacy" => 5,
            other => {
                return Err(Error::config(format!(
                    "{} must be `legacy`, `standard` or `adaptive`, got `{other}`",
                    mode.1
                )));
            }
        };
        let (attempts, source) = match self.total_max_attempts {
            Some(n) => (n, format!("`{at}.total_max_attempts`")),
            None => match env("AWS_MAX_ATTEMPTS") {
                Some(v) => (
                    v.trim().parse::<i64>().map_err(|_| {
                        Error::config(format!("AWS_MAX_ATTEMPTS must be a whole number of attempts, got `{v}`"))
                    })?,
                    "AWS_MAX_ATTEMPTS".to_owned(),
                ),
                None => (default, String::new()),
            },
        };
        let max_attempts = u32::try_from(attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::config(format!("{source} must be at least 1, got {attempts}")))?;
        Ok(Retry { max_attempts })
    }

    fn settings(&self) -> Settings {
        Settings {
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: self.aws_secret_access_key.clone(),
            session_token: self.aws_session_token.clone(),
            region: self.region_name.clone(),
            profile: self.profile_name.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// Builds the provider. It reads the AWS settings but never calls AWS.
pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = BedrockInference::new(&args.provider_id, &args.config, &credentials::process_env)?;
        Ok(ProviderImpl::Inference(Arc::new(provider)))
    })
}

/// An inference provider backed by AWS Bedrock.
pub struct BedrockInference {
    client: Client,
    models: ModelMap,
}

impl BedrockInference {
    /// Reads the config (as the registry defaulted it) and the AWS settings from `env` and the
    /// shared files. Missing credentials or region do not fail the build; requests report them.
    fn new(provider_id: &str, config: &JsonObject, env: Env<'_>) -> Result<Self> {
        let at = format!("{provider_id}.config");
        let cfg: BedrockConfig = typed_config(config, &at)?;
        if let Some(url) = cfg.endpoint_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(Error::config(format!("`{at}.endpoint_url`: `{url}` is not an http(s) URL"))),
            }
        }
        let connect_timeout = BedrockConfig::seconds(cfg.connect_timeout, "connect_timeout", &at)?;
        let read_timeout = BedrockConfig::seconds(cfg.read_timeout, "read_timeout", &at)?;
        let retry = cfg.retry(&at, env)?;
        let target = credentials::resolve(&cfg.settings(), env);
        let client = Client::new(provider_id, target, connect_timeout, read_timeout, retry)?;
        if let Some(why) = client.setup_problem() {
            tracing::warn!(provider = provider_id, "AWS Bedrock is not reachable until this is fixed: {why}");
        }
        Ok(Self { client, models: ModelMap::new(provider_id, "Bedrock", MODELS) })
    }

    fn context(&self, model: &str, action: &str) -> Context {
        Context {
            origin: self.client.origin.clone(),
            model: model.to_owned(),
            path: format!("/model/{model}/{action}"),
        }
    }
}

#[async_trait]
impl InferenceProvider for BedrockInference {
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
        _ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        const ACTION: &str = "converse";
        let name = self.models.name_for(model)?;
        let body = convert::converse_body(&request, true)?;
        let answer: ConverseAnswer = self.client.call(&name, ACTION, &body).await?;
        convert::chat_response(answer).map_err(|m| self.client.origin.bad_answer(&self.context(&name, ACTION).path, m))
    }

    async fn chat_completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<ChatStream> {
        const ACTION: &str = "converse-stream";
        let name = self.models.name_for(model)?;
        let body = convert::converse_body(&request, false)?;
        let frames = self.client.stream(&name, ACTION, &body).await?;
        Ok(stream::chat_events(frames, self.context(&name, ACTION)))
    }

    async fn completion(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        let name = self.models.name_for(model)?;
        let body = convert::invoke_body(&request)?;
        let answer: LlamaGeneration = self.client.call(&name, "invoke", &body).await?;
        Ok(convert::completion_response(answer))
    }

    async fn completion_stream(
        &self,
        model: &ModelDefWithProvider,
        request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        const ACTION: &str = "invoke-with-response-stream";
        let name = self.models.name_for(model)?;
        let body = convert::invoke_body(&request)?;
        let frames = self.client.stream(&name, ACTION, &body).await?;
        Ok(stream::completion_chunks(frames, self.context(&name, ACTION)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    fn build_with(config: &serde_json::Value, env: &[(&str, &str)]) -> Result<BedrockInference> {
        let home = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        vars.push(("HOME".into(), home.path().display().to_string()));
        let get = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        BedrockInference::new("bedrock0", config.as_object().unwrap(), &get)
    }

    #[test]
    fn config_values_are_checked() {
        let e = build_with(&json!({"connect_timeout": 0}), &[]).err().unwrap().to_string();
        assert!(e.contains("bedrock0.config.connect_timeout"), "{e}");
        let e = build_with(&json!({"retry_mode": "eager"}), &[]).err().unwrap().to_string();
        assert!(e.contains("bedrock0.config.retry_mode") && e.contains("eager"), "{e}");
        let e = build_with(&json!({"total_max_attempts": 0}), &[]).err().unwrap().to_string();
        assert!(e.contains("total_max_attempts"), "{e}");
        let e = build_with(&json!({"endpoint_url": "ftp://x"}), &[]).err().unwrap().to_string();
        assert!(e.contains("endpoint_url"), "{e}");
        let e = build_with(&json!({}), &[("AWS_MAX_ATTEMPTS", "many")]).err().unwrap().to_string();
        assert!(e.contains("AWS_MAX_ATTEMPTS"), "{e}");
    }

    #[test]
    fn retry_attempts_follow_the_mode() {
        let attempts = |config: serde_json::Value, env: &[(&str, &str)]| {
            let cfg: BedrockConfig = serde_json::from_value(config).unwrap();
            let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
            cfg.retry("p.config", &get).unwrap().max_attempts
        };
        assert_eq!(attempts(json!({}), &[]), 3);
        assert_eq!(attempts(json!({"retry_mode": "legacy"}), &[]), 5);
        assert_eq!(attempts(json!({}), &[("AWS_RETRY_MODE", "legacy")]), 5);
        assert_eq!(attempts(json!({"total_max_attempts": 1}), &[("AWS_MAX_ATTEMPTS", "7")]), 1);
        assert_eq!(attempts(json!({}), &[("AWS_MAX_ATTEMPTS", "7")]), 7);
    }

    #[tokio::test]
    async fn builds_without_credentials_and_says_so_per_request() {
        let p = build_with(&json!({}), &[]).unwrap();
        assert_eq!(p.list_models().await.unwrap().len(), 3);
        let model = ModelDefWithProvider {
            identifier: "Llama3.1-8B-Instruct".into(),
            llama_model: "Llama3.1-8B-Instruct".into(),
            metadata: JsonObject::new(),
            provider_id: "bedrock0".into(),
        };
        p.register_model(&model).await.unwrap();
        let req: ChatCompletionRequest =
            serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        let e = p.chat_completion(&model, req, &RequestContext::default()).await.unwrap_err();
        assert_eq!(e.status_code(), 503);
        let text = e.to_string();
        for needle in ["bedrock0", "aws_access_key_id", "AWS_ACCESS_KEY_ID", "region_name", "AWS_REGION"] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        let e = p.register_model(&ModelDefWithProvider { llama_model: "Llama3.2-1B".into(), ..model }).await;
        assert_eq!(e.unwrap_err().status_code(), 400);
    }
}

//! `meta-reference` safety: the `llama_guard` shield (Llama Guard run on a guard model served by
//! this stack's inference API) and the `prompt_guard` shield (Prompt Guard run in process).

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::llama_guard::{LlamaGuard, LlamaGuardConfig};
use super::prompt_guard::{self, PromptGuard};
use super::{Verdict, first_as_user, require_messages, shield_def, unsupported_type};
use crate::error::{Error, Result};
use crate::providers::registry::BuildArgs;
use crate::providers::safety::SafetyProvider;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::routing::ModelTable;
use crate::types::common::{JsonObject, Message};
use crate::types::inference::ChatCompletionRequest;
use crate::types::safety::RunShieldResponse;
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

pub const LLAMA_GUARD: &str = "llama_guard";
pub const PROMPT_GUARD: &str = "prompt_guard";

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    llama_guard_shield: Option<LlamaGuardConfig>,
    #[serde(default)]
    enable_prompt_guard: Option<bool>,
    #[serde(default)]
    prompt_guard_model_dir: Option<String>,
    #[serde(default)]
    prompt_guard_threshold: Option<f64>,
    #[serde(default)]
    prompt_guard_type: Option<String>,
}

pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let at = format!("providers.safety[`{}`].config", args.provider_id);
        let config: Config = typed_config(&args.config, &at)?;
        let guard =
            config.llama_guard_shield.map(|c| LlamaGuard::new(c, &format!("{at}.llama_guard_shield"))).transpose()?;
        let models = args.deps.models.clone();
        if let Some(g) = &guard {
            let Some(table) = &models else {
                return Err(Error::config(format!(
                    "`{at}.llama_guard_shield`: the Llama Guard shield needs the inference API to run its guard model"
                )));
            };
            if table.get(&g.model).await?.is_none() {
                tracing::warn!(
                    "safety provider `{}`: guard model `{}` is not served yet; the llama_guard shield fails until it is registered",
                    args.provider_id,
                    g.model
                );
            }
        }
        // The fields are checked even when the shield is off; the model is only looked for when on.
        let settings = prompt_guard::Settings::new(
            config.prompt_guard_model_dir.as_deref(),
            config.prompt_guard_threshold,
            config.prompt_guard_type.as_deref(),
            &at,
        )?;
        let prompt_guard = if config.enable_prompt_guard.unwrap_or(false) {
            Some(PromptGuard::load(settings, &format!("{at}.prompt_guard_model_dir")).await?)
        } else {
            None
        };
        let provider = MetaReferenceSafety::new(args.provider_id, guard, prompt_guard, models);
        Ok(ProviderImpl::Safety(Arc::new(provider)))
    })
}

pub struct MetaReferenceSafety {
    provider_id: String,
    guard: Option<LlamaGuard>,
    prompt_guard: Option<PromptGuard>,
    models: Option<Arc<ModelTable>>,
}

impl MetaReferenceSafety {
    pub fn new(
        provider_id: impl Into<String>,
        guard: Option<LlamaGuard>,
        prompt_guard: Option<PromptGuard>,
        models: Option<Arc<ModelTable>>,
    ) -> Self {
        Self { provider_id: provider_id.into(), guard, prompt_guard, models }
    }

    #[cfg(test)]
    pub fn models_for_tests(&self) -> Option<Arc<ModelTable>> {
        self.models.clone()
    }

    fn served(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.guard.is_some() {
            out.push(LLAMA_GUARD);
        }
        if self.prompt_guard.is_some() {
            out.push(PROMPT_GUARD);
        }
        out
    }

    async fn run_llama_guard(
        &self,
        guard: &LlamaGuard,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        ctx: &RequestContext,
    ) -> Result<Verdict> {
        let messages = LlamaGuard::conversation(first_as_user(messages))?;
        if guard.skips(&messages) {
            return Ok(Verdict::Safe);
        }
        let table =
            self.models.as_ref().ok_or_else(|| Error::internal("llama_guard shield built without inference"))?;
        let (model, inference) = table.resolve(&guard.model).await.map_err(|e| match e {
            Error::InvalidValue(m) => {
                Error::invalid(format!("shield `{}` cannot run its guard model: {m}", shield.identifier))
            }
            other => other,
        })?;
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": guard.model,
            "messages": [{"role": "user", "content": guard.guard_input(&messages)}],
        }))
        .map_err(|e| Error::internal(format!("guard request: {e}")))?;
        // The guard model's call is an inference span of its own under the shield's.
        let span = ctx.span_with(
            "inference.chat_completion",
            crate::telemetry::attributes([("model_id", guard.model.as_str()), ("stream", "false")]),
        );
        let answer = span.record(inference.chat_completion(&model, request, &ctx.within(&span)).await)?;
        let text = answer.completion_message.content.as_text(" ");
        guard.parse(&text).map_err(|why| Error::Upstream {
            provider: self.provider_id.clone(),
            message: format!("shield `{}`: guard model `{}`: {why}", shield.identifier, guard.model),
        })
    }
}

#[async_trait]
impl SafetyProvider for MetaReferenceSafety {
    async fn list_shields(&self) -> Result<Vec<ShieldDef>> {
        Ok(self.served().into_iter().map(|t| shield_def(t, JsonObject::new())).collect())
    }

    async fn register_shield(&self, shield: &ShieldDefWithProvider) -> Result<()> {
        if !self.served().contains(&shield.shield_type.as_str()) {
            return Err(unsupported_type(&self.provider_id, shield, &self.served()));
        }
        if let (PROMPT_GUARD, Some(prompt_guard)) = (shield.shield_type.as_str(), &self.prompt_guard) {
            prompt_guard.shield_settings(shield)?;
        }
        Ok(())
    }

    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        _params: JsonObject,
        ctx: &RequestContext,
    ) -> Result<RunShieldResponse> {
        require_messages(&messages)?;
        let verdict = match (shield.shield_type.as_str(), &self.guard, &self.prompt_guard) {
            (LLAMA_GUARD, Some(guard), _) => self.run_llama_guard(guard, shield, messages, ctx).await?,
            (PROMPT_GUARD, _, Some(prompt_guard)) => prompt_guard.run(shield, &messages).await?,
            _ => return Err(unsupported_type(&self.provider_id, shield, &self.served())),
        };
        Ok(verdict.into_response())
    }
}

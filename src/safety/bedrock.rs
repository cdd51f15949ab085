//! `remote::bedrock`: Bedrock guardrails as `generic_content_shield` shields. A shield names its
//! guardrail in `params.guardrailIdentifier` and `params.guardrailVersion`; running it calls
//! Bedrock Runtime's `ApplyGuardrail`, signed (`SigV4`) by the Bedrock inference provider's client.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{require_messages, unsupported_type};
use crate::error::{Error, Result};
use crate::providers::inference::bedrock::client::{Client, Retry};
use crate::providers::inference::bedrock::credentials::{self, Env, Settings};
use crate::providers::inference::bedrock::signing::uri_encode;
use crate::providers::registry::BuildArgs;
use crate::providers::safety::SafetyProvider;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::{JsonObject, Message, Role};
use crate::types::safety::{RunShieldResponse, SafetyViolation, ViolationLevel};
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

pub const SHIELD_TYPE: &str = "generic_content_shield";

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    aws_profile: Option<String>,
}

pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let provider = BedrockGuardrails::new(&args.provider_id, &args.config, &credentials::process_env)?;
        Ok(ProviderImpl::Safety(Arc::new(provider)))
    })
}

pub struct BedrockGuardrails {
    provider_id: String,
    client: Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Applied {
    action: String,
    #[serde(default)]
    outputs: Vec<Output>,
    #[serde(default)]
    assessments: Vec<JsonObject>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    text: String,
}

impl BedrockGuardrails {
    /// Reads the config and the AWS settings (profile from the config, the rest from `env` and
    /// the shared files). Missing credentials do not fail the build; runs report them.
    fn new(provider_id: &str, config: &JsonObject, env: Env<'_>) -> Result<Self> {
        let at = format!("providers.safety[`{provider_id}`].config");
        let cfg: Config = typed_config(config, &at)?;
        let settings = Settings { profile: cfg.aws_profile.filter(|p| !p.trim().is_empty()), ..Settings::default() };
        let client = Client::new(
            provider_id,
            credentials::resolve(&settings, env),
            TIMEOUT,
            TIMEOUT,
            Retry { max_attempts: 3 },
        )?;
        if let Some(why) = client.setup_problem() {
            tracing::warn!(provider = provider_id, "Bedrock guardrails are not reachable until this is fixed: {why}");
        }
        Ok(Self { provider_id: provider_id.to_owned(), client })
    }

    /// The guardrail id and version a shield names.
    fn guardrail<'a>(&self, shield: &'a ShieldDefWithProvider) -> Result<(&'a str, &'a str)> {
        if shield.shield_type != SHIELD_TYPE {
            return Err(unsupported_type(&self.provider_id, shield, &[SHIELD_TYPE]));
        }
        let param = |name: &str| match shield.params.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.as_str()),
            _ => Err(Error::invalid(format!(
                "shield `{}` needs `params.{name}` (a string) naming its Bedrock guardrail",
                shield.identifier
            ))),
        };
        Ok((param("guardrailIdentifier")?, param("guardrailVersion")?))
    }
}

#[async_trait]
impl SafetyProvider for BedrockGuardrails {
    /// Guardrails are not listed: each is registered as a shield naming it.
    async fn list_shields(&self) -> Result<Vec<ShieldDef>> {
        Ok(Vec::new())
    }

    async fn register_shield(&self, shield: &ShieldDefWithProvider) -> Result<()> {
        self.guardrail(shield).map(|_| ())
    }

    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        _params: JsonObject,
        _ctx: &RequestContext,
    ) -> Result<RunShieldResponse> {
        let (id, version) = self.guardrail(shield)?;
        require_messages(&messages)?;
        // A conversation ending with the user is checked as input, else as model output.
        let source = match shield.params.get("source").and_then(Value::as_str) {
            Some(s) => s.to_owned(),
            None if messages.last().map(Message::role) == Some(Role::User) => "INPUT".to_owned(),
            None => "OUTPUT".to_owned(),
        };
        let content: Vec<Value> =
            messages.iter().map(|m| json!({"text": {"text": m.content().as_text(" ")}})).collect();
        let path = format!("/guardrail/{}/version/{}/apply", uri_encode(id, true), uri_encode(version, true));
        let what = format!("guardrail {id} version {version}");
        let applied: Applied =
            self.client.call_path(&path, &what, &json!({"source": source, "content": content})).await?;
        if applied.action != "GUARDRAIL_INTERVENED" {
            return Ok(RunShieldResponse { violation: None });
        }
        let user_message = applied.outputs.last().map(|o| o.text.clone()).filter(|t| !t.is_empty());
        let mut metadata = applied.assessments.last().cloned().unwrap_or_default();
        let policies: Vec<String> = metadata.keys().cloned().collect();
        metadata.insert("violation_type".into(), Value::String(policies.join(",")));
        Ok(RunShieldResponse {
            violation: Some(SafetyViolation { violation_level: ViolationLevel::Error, user_message, metadata }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::post;

    use super::*;
    use crate::types::common::{UserMessage, UserRole};

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    /// `ApplyGuardrail` as AWS documents it: `POST /guardrail/{id}/version/{v}/apply` with
    /// `{source, content: [{text: {text}}]}`, answered `{action, outputs, assessments, usage}`.
    async fn apply(
        State(seen): State<Seen>,
        Path((id, version)): Path<(String, String)>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        seen.lock().unwrap().push((format!("{id}/{version}"), auth, body.clone()));
        let text = body["content"].to_string();
        if text.contains("forbidden") {
            axum::Json(json!({
                "action": "GUARDRAIL_INTERVENED",
                "outputs": [{"text": "Sorry, the model cannot answer this question."}],
                "assessments": [{"topicPolicy": {"topics": [{"name": "Investments", "type": "DENY", "action": "BLOCKED"}]}}],
                "usage": {"topicPolicyUnits": 1}
            }))
        } else {
            axum::Json(json!({"action": "NONE", "outputs": [], "assessments": [{}], "usage": {}}))
        }
    }

    async fn provider() -> (BedrockGuardrails, Seen) {
        let seen: Seen = Arc::default();
        let app = Router::new().route("/guardrail/{id}/version/{version}/apply", post(apply)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        let vars: HashMap<&str, String> = HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
            ("AWS_REGION", "us-west-2".to_owned()),
            ("AWS_ENDPOINT_URL", format!("http://{addr}")),
            ("HOME", "/nonexistent".to_owned()),
        ]);
        let env = move |k: &str| vars.get(k).cloned();
        (BedrockGuardrails::new("guardrails", &JsonObject::new(), &env).unwrap(), seen)
    }

    fn shield(params: &Value) -> ShieldDefWithProvider {
        ShieldDefWithProvider {
            identifier: "finance".into(),
            shield_type: SHIELD_TYPE.into(),
            params: params.as_object().cloned().unwrap_or_default(),
            provider_id: "guardrails".into(),
        }
    }

    fn user(t: &str) -> Message {
        Message::User(UserMessage { role: UserRole::default(), content: t.into(), context: None })
    }

    #[tokio::test]
    async fn guardrails_are_applied_signed_and_read() {
        let (p, seen) = provider().await;
        let s = shield(&json!({"guardrailIdentifier": "gr-1", "guardrailVersion": "DRAFT"}));
        p.register_shield(&s).await.unwrap();
        let ctx = RequestContext::default();
        assert!(p.run_shield(&s, vec![user("hello")], JsonObject::new(), &ctx).await.unwrap().violation.is_none());
        let v = p.run_shield(&s, vec![user("a forbidden question")], JsonObject::new(), &ctx).await.unwrap();
        let v = v.violation.unwrap();
        assert_eq!(v.violation_level, ViolationLevel::Error);
        assert_eq!(v.user_message.as_deref(), Some("Sorry, the model cannot answer this question."));
        assert_eq!(v.metadata["violation_type"], "topicPolicy");
        assert_eq!(v.metadata["topicPolicy"]["topics"][0]["name"], "Investments");
        let (target, auth, body) = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(target, "gr-1/DRAFT");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
                && auth.contains("/us-west-2/bedrock/aws4_request"),
            "{auth}"
        );
        assert_eq!(body, json!({"source": "INPUT", "content": [{"text": {"text": "a forbidden question"}}]}));
    }

    #[tokio::test]
    async fn shields_must_name_their_guardrail() {
        let (p, _) = provider().await;
        let e = p.register_shield(&shield(&json!({"guardrailIdentifier": "gr-1"}))).await.unwrap_err().to_string();
        assert!(e.contains("params.guardrailVersion"), "{e}");
        let mut other = shield(&json!({"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}));
        other.shield_type = "llama_guard".into();
        let e = p.register_shield(&other).await.unwrap_err().to_string();
        assert!(e.contains("generic_content_shield"), "{e}");
        assert!(p.list_shields().await.unwrap().is_empty());
    }
}

//! `remote::together`: the `llama_guard` shield on Together's hosted Llama Guard models, through
//! Together's OpenAI-compatible `POST /chat/completions`. The hosted model applies its own guard
//! template, so the conversation (user and assistant messages) is sent as it is.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::llama_guard::parse_answer;
use super::{require_messages, shield_def, unsupported_type};
use crate::error::{Error, Result};
use crate::providers::inference::client::{Client, Service};
use crate::providers::registry::BuildArgs;
use crate::providers::safety::SafetyProvider;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::types::common::{JsonObject, Message, Role};
use crate::types::safety::RunShieldResponse;
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

pub const SHIELD_TYPE: &str = "llama_guard";

/// Shield `params.model` values and Together's model names (upstream's map); `llama_guard`
/// is the default.
pub const MODEL_MAP: [(&str, &str); 3] = [
    ("llama_guard", "meta-llama/Meta-Llama-Guard-3-8B"),
    ("Llama-Guard-3-8B", "meta-llama/Meta-Llama-Guard-3-8B"),
    ("Llama-Guard-3-11B-Vision", "meta-llama/Llama-Guard-3-11B-Vision-Turbo"),
];

static SERVICE: Service = Service::new("Together", "api_key", "together_api_key");

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default = "default_url")]
    url: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_url() -> Option<String> {
    Some("https://api.together.xyz/v1".to_owned())
}

pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let at = format!("providers.safety[`{}`].config", args.provider_id);
        let config: Config = typed_config(&args.config, &at)?;
        let url = config.url.unwrap_or_else(|| default_url().unwrap_or_default());
        let url = url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::config(format!("`{at}.url` must be an http(s) URL, got `{url}`")));
        }
        let client = Client::new(&args.provider_id, &SERVICE, url, TIMEOUT, config.api_key)?;
        Ok(ProviderImpl::Safety(Arc::new(TogetherSafety { provider_id: args.provider_id, client })))
    })
}

pub struct TogetherSafety {
    provider_id: String,
    client: Client,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

impl TogetherSafety {
    fn model_of(&self, shield: &ShieldDefWithProvider) -> Result<&'static str> {
        let wanted = match shield.params.get("model") {
            None | Some(Value::Null) => "llama_guard",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(Error::invalid(format!(
                    "shield `{}`: `params.model` must be a string, got {other}",
                    shield.identifier
                )));
            }
        };
        MODEL_MAP.iter().find(|(k, _)| *k == wanted).map(|(_, v)| *v).ok_or_else(|| {
            let known: Vec<&str> = MODEL_MAP.iter().map(|(k, _)| *k).collect();
            Error::invalid(format!(
                "shield `{}`: safety provider `{}` has no Llama Guard model `{wanted}`; use one of {}",
                shield.identifier,
                self.provider_id,
                known.join(", ")
            ))
        })
    }
}

#[async_trait]
impl SafetyProvider for TogetherSafety {
    async fn list_shields(&self) -> Result<Vec<ShieldDef>> {
        Ok(vec![shield_def(SHIELD_TYPE, JsonObject::new())])
    }

    async fn register_shield(&self, shield: &ShieldDefWithProvider) -> Result<()> {
        if shield.shield_type != SHIELD_TYPE {
            return Err(unsupported_type(&self.provider_id, shield, &[SHIELD_TYPE]));
        }
        self.model_of(shield).map(|_| ())
    }

    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        _params: JsonObject,
        ctx: &RequestContext,
    ) -> Result<RunShieldResponse> {
        if shield.shield_type != SHIELD_TYPE {
            return Err(unsupported_type(&self.provider_id, shield, &[SHIELD_TYPE]));
        }
        require_messages(&messages)?;
        let model = self.model_of(shield)?;
        if self.client.key(Some(ctx)).is_none() {
            return Err(Error::invalid(format!(
                "safety provider `{}` has no Together API key: set `api_key` in its config, or pass {{\"together_api_key\": \"<key>\"}} in the X-LlamaStack-ProviderData header",
                self.provider_id
            )));
        }
        let wire: Vec<Value> = messages
            .iter()
            .filter(|m| matches!(m.role(), Role::User | Role::Assistant))
            .map(|m| json!({"role": m.role().as_str(), "content": m.content().as_text(" ")}))
            .collect();
        if wire.is_empty() {
            return Err(Error::invalid("the llama_guard shield judges user and assistant messages; none were given"));
        }
        let body = json!({"model": model, "messages": wire});
        let answer: Answer = self.client.post("/chat/completions", &body, model, ctx).await?;
        let text =
            answer.choices.into_iter().next().and_then(|c| c.message.content).ok_or_else(|| Error::Upstream {
                provider: self.provider_id.clone(),
                message: format!("Together answered no choice for guard model `{model}`"),
            })?;
        let verdict = parse_answer(&text, &[]).map_err(|why| Error::Upstream {
            provider: self.provider_id.clone(),
            message: format!("shield `{}`: guard model `{model}`: {why}", shield.identifier),
        })?;
        Ok(verdict.into_response())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;
    use crate::types::common::{
        AssistantRole, CompletionMessage, StopReason, SystemMessage, SystemRole, UserMessage, UserRole,
    };
    use crate::types::safety::ViolationLevel;

    type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

    async fn chat(
        State(seen): State<Seen>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::response::Response {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        seen.lock().unwrap().push((auth.clone(), body.clone()));
        if auth.as_deref() != Some("Bearer tg-key") && auth.as_deref() != Some("Bearer header-key") {
            let err = json!({"error": {"message": "Invalid API key provided", "type": "invalid_request_error"}});
            return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
        }
        let last = body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
        let content = if last.contains("ATTACK") {
            "unsafe\nS1"
        } else if last.contains("GARBLE") {
            "perhaps"
        } else {
            "safe"
        };
        axum::Json(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "eos"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        }))
        .into_response()
    }

    /// Together's chat completions as documented: bearer key, `{model, messages}`, an answer
    /// with `choices[0].message.content`. The answer is scripted by a word in the last message.
    async fn fake_together() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let app = Router::new().route("/v1/chat/completions", post(chat)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        (format!("http://{addr}/v1"), seen)
    }

    async fn provider(url: &str, key: Option<&str>) -> Arc<dyn SafetyProvider> {
        let mut config = JsonObject::new();
        config.insert("url".into(), json!(url));
        config.insert("api_key".into(), key.map_or(Value::Null, |k| json!(k)));
        match build(BuildArgs::standalone("together-safety", config)).await.unwrap() {
            ProviderImpl::Safety(p) => p,
            _ => panic!("not a safety provider"),
        }
    }

    fn user(t: &str) -> Message {
        Message::User(UserMessage { role: UserRole::default(), content: t.into(), context: None })
    }

    #[tokio::test]
    async fn verdicts_models_and_keys_follow_togethers_api() {
        let (url, seen) = fake_together().await;
        let p = provider(&url, Some("tg-key")).await;
        assert_eq!(p.list_shields().await.unwrap()[0].identifier, "llama_guard");
        let shield = shield_def(SHIELD_TYPE, JsonObject::new()).with_provider("together-safety");
        let ctx = RequestContext::default();
        let conversation = vec![
            Message::System(SystemMessage { role: SystemRole::default(), content: "sys".into() }),
            user("hello"),
            Message::Assistant(CompletionMessage {
                role: AssistantRole::default(),
                content: "hi".into(),
                stop_reason: StopReason::EndOfTurn,
                tool_calls: vec![],
            }),
            user("ATTACK now"),
        ];
        let v = p.run_shield(&shield, conversation, JsonObject::new(), &ctx).await.unwrap().violation.unwrap();
        assert_eq!(v.violation_level, ViolationLevel::Error);
        assert_eq!(v.metadata["violation_type"], "S1");
        let (auth, body) = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(auth.as_deref(), Some("Bearer tg-key"));
        assert_eq!(body["model"], "meta-llama/Meta-Llama-Guard-3-8B");
        assert_eq!(body["messages"].as_array().unwrap().len(), 3, "system messages are not sent: {body}");
        assert!(p.run_shield(&shield, vec![user("fine")], JsonObject::new(), &ctx).await.unwrap().violation.is_none());
        let e = p.run_shield(&shield, vec![user("GARBLE")], JsonObject::new(), &ctx).await.unwrap_err();
        assert_eq!(e.status_code(), 502);
        assert!(e.to_string().contains("\"perhaps\""), "{e}");

        let mut params = JsonObject::new();
        params.insert("model".into(), json!("Llama-Guard-3-11B-Vision"));
        let vision = ShieldDefWithProvider { params, ..shield.clone() };
        p.register_shield(&vision).await.unwrap();
        p.run_shield(&vision, vec![user("x")], JsonObject::new(), &ctx).await.unwrap();
        assert_eq!(seen.lock().unwrap().last().unwrap().1["model"], "meta-llama/Llama-Guard-3-11B-Vision-Turbo");
        let mut params = JsonObject::new();
        params.insert("model".into(), json!("Llama-Guard-3-1B"));
        let e = p.register_shield(&ShieldDefWithProvider { params, ..shield.clone() }).await.unwrap_err().to_string();
        assert!(e.contains("Llama-Guard-3-1B") && e.contains("Llama-Guard-3-8B"), "{e}");
    }

    #[tokio::test]
    async fn the_key_comes_from_the_config_or_the_request() {
        let (url, _) = fake_together().await;
        let p = provider(&url, None).await;
        let shield = shield_def(SHIELD_TYPE, JsonObject::new()).with_provider("together-safety");
        let e =
            p.run_shield(&shield, vec![user("x")], JsonObject::new(), &RequestContext::default()).await.unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("together_api_key"), "{e}");
        let ctx = RequestContext::from_header(Some(r#"{"together_api_key": "header-key"}"#));
        assert!(p.run_shield(&shield, vec![user("x")], JsonObject::new(), &ctx).await.unwrap().violation.is_none());
        let bad = RequestContext::from_header(Some(r#"{"together_api_key": "wrong"}"#));
        let e = p.run_shield(&shield, vec![user("x")], JsonObject::new(), &bad).await.unwrap_err();
        assert!(e.status_code() >= 400 && e.to_string().contains("Invalid API key"), "{e}");
    }
}

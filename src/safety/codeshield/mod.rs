//! `meta-reference/codeshield`: the `code_scanner` shield. Each message's text is scanned for
//! insecure-code patterns (rules in `rules.yaml`); any finding is an `error` violation whose
//! `violation_type` lists the pattern ids, as upstream's scanner reported them.

pub mod scanner;

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Verdict, require_messages, shield_def, unsupported_type};
use crate::error::Result;
use crate::providers::registry::BuildArgs;
use crate::providers::safety::SafetyProvider;
use crate::providers::{ProviderImpl, RequestContext};
use crate::types::common::{JsonObject, Message};
use crate::types::safety::{RunShieldResponse, ViolationLevel};
use crate::types::shields::{ShieldDef, ShieldDefWithProvider};

pub const SHIELD_TYPE: &str = "code_scanner";
/// Upstream's message to the user when code is flagged.
pub const USER_MESSAGE: &str = "Sorry, I found security concerns in the code.";

pub fn build(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        // A broken rule file is found at start-up rather than on the first scan.
        scanner::rules()?;
        Ok(ProviderImpl::Safety(Arc::new(CodeShield { provider_id: args.provider_id })))
    })
}

pub struct CodeShield {
    provider_id: String,
}

impl CodeShield {
    pub fn new(provider_id: impl Into<String>) -> Self {
        Self { provider_id: provider_id.into() }
    }

    /// Scans every message; the text of list contents is joined with spaces.
    pub fn judge(messages: &[Message]) -> Result<Verdict> {
        let mut findings = Vec::new();
        for (index, m) in messages.iter().enumerate() {
            for f in scanner::scan(&m.content().as_text(" "))? {
                findings.push((index, f));
            }
        }
        if findings.is_empty() {
            return Ok(Verdict::Safe);
        }
        let mut ids: Vec<&str> = Vec::new();
        for (_, f) in &findings {
            if !ids.contains(&f.pattern_id.as_str()) {
                ids.push(&f.pattern_id);
            }
        }
        let issues: Vec<Value> = findings
            .iter()
            .map(|(index, f)| {
                json!({
                    "pattern_id": f.pattern_id,
                    "cwe_id": f.cwe_id,
                    "severity": f.severity,
                    "description": f.description,
                    "language": f.language,
                    "message_index": index,
                    "line": f.line,
                })
            })
            .collect();
        let mut details = JsonObject::new();
        details.insert("issues".into(), Value::Array(issues));
        Ok(Verdict::Violation {
            level: ViolationLevel::Error,
            user_message: Some(USER_MESSAGE.to_owned()),
            violation_type: ids.join(","),
            details,
        })
    }
}

#[async_trait]
impl SafetyProvider for CodeShield {
    async fn list_shields(&self) -> Result<Vec<ShieldDef>> {
        let languages: Vec<Value> = scanner::LANGUAGES.iter().map(|(n, _)| Value::String((*n).to_owned())).collect();
        let mut params = JsonObject::new();
        params.insert("languages".into(), Value::Array(languages));
        Ok(vec![shield_def(SHIELD_TYPE, params)])
    }

    async fn register_shield(&self, shield: &ShieldDefWithProvider) -> Result<()> {
        if shield.shield_type == SHIELD_TYPE {
            Ok(())
        } else {
            Err(unsupported_type(&self.provider_id, shield, &[SHIELD_TYPE]))
        }
    }

    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        _params: JsonObject,
        _ctx: &RequestContext,
    ) -> Result<RunShieldResponse> {
        if shield.shield_type != SHIELD_TYPE {
            return Err(unsupported_type(&self.provider_id, shield, &[SHIELD_TYPE]));
        }
        require_messages(&messages)?;
        Ok(Self::judge(&messages)?.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::common::{UserMessage, UserRole};

    fn user(text: &str) -> Message {
        Message::User(UserMessage { role: UserRole::default(), content: text.into(), context: None })
    }

    #[tokio::test]
    async fn insecure_code_is_an_error_violation_listing_pattern_ids() {
        let p = CodeShield::new("cs");
        let shield = shield_def(SHIELD_TYPE, JsonObject::new()).with_provider("cs");
        let text = "```python\nimport hashlib, os\nh = hashlib.md5(b)\nos.system(cmd)\nh2 = hashlib.sha1(b)\n```";
        let ctx = RequestContext::default();
        let r = p.run_shield(&shield, vec![user("write code"), user(text)], JsonObject::new(), &ctx);
        let v = r.await.unwrap().violation.unwrap();
        assert_eq!(v.violation_level, ViolationLevel::Error);
        assert_eq!(v.user_message.as_deref(), Some(USER_MESSAGE));
        assert_eq!(v.metadata["violation_type"], "python-weak-hash,python-shell-injection");
        let issues = v.metadata["issues"].as_array().unwrap();
        assert_eq!(issues.len(), 3);
        assert_eq!(issues[0]["message_index"], 1);
        assert_eq!(issues[0]["line"], 3);
        assert_eq!(issues[0]["cwe_id"], "CWE-328");
    }

    #[tokio::test]
    async fn clean_code_passes_and_other_shield_types_are_refused() {
        let p = CodeShield::new("cs");
        let shield = shield_def(SHIELD_TYPE, JsonObject::new()).with_provider("cs");
        let ctx = RequestContext::default();
        let r = p.run_shield(&shield, vec![user("print('hi')")], JsonObject::new(), &ctx);
        assert_eq!(r.await.unwrap().violation, None);
        let guard = shield_def("llama_guard", JsonObject::new()).with_provider("cs");
        let e = p.register_shield(&guard).await.unwrap_err().to_string();
        assert!(e.contains("`llama_guard`") && e.contains("code_scanner"), "{e}");
        let e = p.run_shield(&shield, vec![], JsonObject::new(), &RequestContext::default()).await.unwrap_err();
        assert_eq!(e.status_code(), 400);
    }
}

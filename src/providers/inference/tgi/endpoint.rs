//! Hugging Face Inference Endpoints: finding where a named endpoint serves (its TGI URL), the
//! repository it runs and its token limit, and waiting a bounded time for one that is starting.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::providers::inference::client::{Client, Service};

/// The endpoints API, as messages name it.
static API: Service = Service::new("the Hugging Face Inference Endpoints API", "api_token", "");

/// What the endpoints API says about one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EndpointInfo {
    /// `running`, `pending`, `initializing`, `updating`, `updateFailed`, `paused`, `failed`,
    /// `scaledToZero`.
    pub state: String,
    /// Where it serves; only set once it has been deployed.
    pub url: Option<String>,
    pub repo: String,
    /// `MAX_TOTAL_TOKENS` from its environment, when set.
    pub max_total_tokens: Option<u64>,
}

/// Reads an endpoint description. The token limit is in the container's environment: under
/// `model.image.custom.env` for a custom TGI image (where upstream reads it), or `model.env`.
pub(super) fn parse(raw: &Value) -> Result<EndpointInfo, String> {
    let text = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let state = text(&raw["status"]["state"]).ok_or("no `status.state`")?;
    let repo = text(&raw["model"]["repository"]).ok_or("no `model.repository`")?;
    let url = text(&raw["status"]["url"]);
    let limit = [&raw["model"]["image"]["custom"]["env"], &raw["model"]["env"]]
        .into_iter()
        .map(|env| &env["MAX_TOTAL_TOKENS"])
        .find(|v| !v.is_null());
    let max_total_tokens = match limit {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("`MAX_TOTAL_TOKENS` is not a number: {v}"))?,
        ),
    };
    Ok(EndpointInfo { state, url, repo, max_total_tokens })
}

/// One endpoint and how to ask about it.
pub(super) struct Endpoint {
    client: Client,
    namespace: String,
    name: String,
    /// How long a request waits for an endpoint that is starting.
    wait: Duration,
}

impl Endpoint {
    pub fn new(
        provider_id: &str,
        api_url: String,
        namespace: String,
        name: String,
        api_token: Option<String>,
        wait: Duration,
    ) -> Result<Self> {
        // Describing an endpoint is quick; the client's listing timeout bounds each look-up.
        let client = Client::new(provider_id, &API, api_url, Duration::from_secs(30), api_token)?;
        Ok(Self { client, namespace, name, wait })
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Asks once about the endpoint, whatever its state.
    pub async fn describe(&self) -> Result<EndpointInfo> {
        let path = format!("/endpoint/{}/{}", self.namespace, self.name);
        let raw: Value = self.client.list(&path).await.map_err(|e| match e {
            Error::InvalidValue(msg) => {
                Error::invalid(format!("{msg} (looking up Inference Endpoint `{}`)", self.full_name()))
            }
            other => other,
        })?;
        parse(&raw).map_err(|m| self.client.origin.bad_answer(&path, m))
    }

    /// The endpoint once it can take requests. One that is starting is asked about again until
    /// it runs or the wait is over; one that is paused or failed will not start by itself, so it
    /// is reported at once. An endpoint scaled to zero keeps its URL and wakes on a request.
    pub async fn ready(&self) -> Result<EndpointInfo> {
        let deadline = Instant::now() + self.wait;
        let poll = (self.wait / 5).clamp(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            let info = self.describe().await?;
            let unavailable = |why: String| Error::Unavailable {
                provider: self.client.origin.provider.to_string(),
                message: format!("Inference Endpoint `{}` is {why}", self.full_name()),
            };
            match (info.state.as_str(), &info.url) {
                ("running" | "scaledToZero", Some(_)) => return Ok(info),
                ("paused", _) => return Err(unavailable("paused; resume it on Hugging Face".into())),
                (state @ ("failed" | "updateFailed"), _) => {
                    return Err(unavailable(format!("in state `{state}`; see its logs on Hugging Face")));
                }
                (state, _) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(unavailable(format!(
                            "in state `{state}`, not running yet (waited {:.1}s); try again shortly",
                            self.wait.as_secs_f64()
                        )));
                    }
                    tokio::time::sleep(poll.min(deadline - now)).await;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn descriptions_are_read() {
        let raw = json!({
            "name": "llama", "type": "protected",
            "model": {"repository": "meta-llama/Llama-3.1-8B-Instruct", "framework": "pytorch",
                      "image": {"custom": {"url": "ghcr.io/huggingface/text-generation-inference:2.3",
                                           "env": {"MAX_TOTAL_TOKENS": "8192", "MODEL_ID": "/repository"}}}},
            "status": {"state": "running", "url": "https://abc.us-east-1.aws.endpoints.huggingface.cloud"},
        });
        let info = parse(&raw).unwrap();
        assert_eq!(info.state, "running");
        assert_eq!(info.url.as_deref(), Some("https://abc.us-east-1.aws.endpoints.huggingface.cloud"));
        assert_eq!((info.repo.as_str(), info.max_total_tokens), ("meta-llama/Llama-3.1-8B-Instruct", Some(8192)));

        let raw = json!({"model": {"repository": "r", "env": {"MAX_TOTAL_TOKENS": 2048}},
                         "status": {"state": "paused", "url": null}});
        let info = parse(&raw).unwrap();
        assert_eq!((info.url, info.max_total_tokens), (None, Some(2048)));
        let raw = json!({"model": {"repository": "r"}, "status": {"state": "pending"}});
        assert_eq!(parse(&raw).unwrap().max_total_tokens, None);
        assert!(parse(&json!({"model": {"repository": "r"}})).unwrap_err().contains("status.state"));
        let bad =
            json!({"model": {"repository": "r", "env": {"MAX_TOTAL_TOKENS": "lots"}}, "status": {"state": "running"}});
        assert!(parse(&bad).unwrap_err().contains("MAX_TOTAL_TOKENS"));
    }
}

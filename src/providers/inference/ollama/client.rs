//! The HTTP side of the provider: one pooled `reqwest` client per instance, and the mapping of
//! transport failures and Ollama's `{"error": ...}` answers onto the crate's error type.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ndjson::{decode_lines, decode_object};
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{causes, preview};

/// How long to wait for a TCP connection. Short, so a stopped Ollama fails fast even when the
/// whole-response timeout is minutes long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Listing tags is quick; a server that takes longer than this is treated as unreachable.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);

/// Who we are talking to, carried into streams so their errors say so.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub provider: Arc<str>,
    pub base_url: Arc<str>,
}

impl Origin {
    /// A failure to reach Ollama or to read its answer in time.
    pub(super) fn transport(&self, path: &str, e: &reqwest::Error) -> Error {
        let provider = self.provider.to_string();
        let base = &self.base_url;
        // A refused or timed-out connect is "unavailable", not a slow answer.
        if e.is_connect() {
            return Error::Unavailable {
                provider,
                message: format!("cannot connect to Ollama at {base} ({}); is `ollama serve` running?", causes(e)),
            };
        }
        if e.is_timeout() {
            return Error::Timeout(format!(
                "provider `{provider}`: Ollama at {base} did not finish answering {path} in time (see the provider's `timeout`)"
            ));
        }
        Error::Upstream { provider, message: format!("request to Ollama at {base}{path} failed: {}", causes(e)) }
    }

    /// An answer we cannot use.
    pub(super) fn bad_answer(&self, path: &str, detail: impl std::fmt::Display) -> Error {
        Error::Upstream {
            provider: self.provider.to_string(),
            message: format!("unexpected answer from Ollama at {}{path}: {detail}", self.base_url),
        }
    }

    /// A non-success status. `tag` is the Ollama model the request was for.
    pub(super) fn status(&self, path: &str, status: StatusCode, body: &[u8], tag: Option<&str>) -> Error {
        let msg = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| preview(body));
        let base = &self.base_url;
        match tag {
            Some(tag) if status == StatusCode::NOT_FOUND && msg.contains("not found") => Error::invalid(format!(
                "model `{tag}` is not available in Ollama at {base} ({msg}); pull it with `ollama pull {tag}`"
            )),
            _ if status.is_client_error() => {
                let subject = tag.map_or_else(String::new, |t| format!(" for model `{t}`"));
                Error::invalid(format!("Ollama at {base} refused the request{subject}: {msg}"))
            }
            _ => Error::Upstream {
                provider: self.provider.to_string(),
                message: format!("Ollama at {base} answered {status} on {path}: {msg}"),
            },
        }
    }

    #[cfg(test)]
    pub(super) fn for_tests() -> Self {
        Self { provider: Arc::from("ollama"), base_url: Arc::from("http://localhost:11434") }
    }
}

pub(super) struct Client {
    http: reqwest::Client,
    /// The whole-response timeout from the config.
    timeout: Duration,
    pub(super) origin: Origin,
}

impl Client {
    pub(super) fn new(provider: &str, base_url: String, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| Error::config(format!("provider `{provider}`: cannot set up an HTTP client: {e}")))?;
        Ok(Self { http, timeout, origin: Origin { provider: Arc::from(provider), base_url: Arc::from(base_url) } })
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str, tag: Option<&str>) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|e| self.origin.transport(path, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        // The body only explains the failure; if it cannot be read, the status still does.
        let body = resp.bytes().await.unwrap_or_default();
        Err(self.origin.status(path, status, &body, tag))
    }

    async fn read<T: DeserializeOwned>(&self, resp: reqwest::Response, path: &str) -> Result<T> {
        let bytes = resp.bytes().await.map_err(|e| self.origin.transport(path, &e))?;
        decode_object(&bytes, &self.origin, path)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin.base_url)
    }

    /// `GET path`, given at most the short listing timeout.
    pub(super) async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let req = self.http.get(self.url(path)).timeout(LISTING_TIMEOUT.min(self.timeout));
        let resp = self.send(req, path, None).await?;
        self.read(resp, path).await
    }

    /// `POST path` with a JSON body, answered by one JSON object.
    pub(super) async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value, tag: &str) -> Result<T> {
        let resp = self.send(self.http.post(self.url(path)).json(body), path, Some(tag)).await?;
        self.read(resp, path).await
    }

    /// `POST path` answered by an NDJSON stream. Status errors come back here, before any item.
    pub(super) async fn post_stream<T>(
        &self,
        path: &'static str,
        body: &Value,
        tag: &str,
    ) -> Result<BoxStream<'static, Result<T>>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let resp = self.send(self.http.post(self.url(path)).json(body), path, Some(tag)).await?;
        Ok(decode_lines(resp.bytes_stream(), self.origin.clone(), path))
    }
}

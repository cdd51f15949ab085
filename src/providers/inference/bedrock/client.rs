//! The HTTP side of the provider: one pooled client with boto3's connect and read timeouts, a
//! fresh `SigV4` signature on every attempt, retries of throttled calls, and the mapping of
//! Bedrock's errors (`x-amzn-ErrorType` plus `{"message": ...}`) onto the crate's error type.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::credentials::Resolved;
use super::eventstream::{self, Frame, StreamError};
use super::signing::{self, SERVICE, Scope};
use crate::error::{Error, Result};
use crate::providers::inference::http_util::{causes, preview};

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// The frames of a streamed answer, with transport and framing failures already mapped.
pub(super) type Frames = BoxStream<'static, Result<Frame>>;

/// Who we are talking to, carried into streams so their errors say so.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub provider: Arc<str>,
    /// The endpoint's base URL, or a description when it could not be worked out.
    pub endpoint: Arc<str>,
    pub read_timeout: Duration,
}

/// A failed call as Bedrock describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// The HTTP status; 0 for an exception inside an event stream.
    pub status: u16,
    /// The error's type, e.g. `ThrottlingException` (empty when Bedrock named none).
    pub kind: String,
    pub message: String,
}

impl Failure {
    /// Reads a failed answer: the type from `x-amzn-ErrorType` (`Type:namespace`) or the body's
    /// `__type` (`namespace#Type`), the message from the body's `message`.
    pub(super) fn read(status: StatusCode, error_type: Option<&str>, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| json.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
        let kind = error_type
            .map(|t| t.split(':').next().unwrap_or(t).to_owned())
            .or_else(|| field("__type").map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned()))
            .unwrap_or_default();
        let message = field("message").or_else(|| field("Message")).unwrap_or_else(|| preview(body));
        Self { status: status.as_u16(), kind: kind.trim().to_owned(), message }
    }

    /// An exception frame; stream exception types are spelled `throttlingException`.
    pub(super) fn from_stream(kind: &str, message: &str) -> Self {
        let mut chars = kind.chars();
        let kind = chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default();
        Self { status: 0, kind, message: message.to_owned() }
    }

    /// Throttling and passing service trouble, which boto3's standard mode retries. Timeouts
    /// are not retried: a model that was too slow once would be as slow again.
    pub(super) fn retryable(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "ThrottlingException"
                | "TooManyRequestsException"
                | "ServiceUnavailableException"
                | "ModelNotReadyException"
                | "InternalServerException"
        ) || matches!(self.status, 429 | 500 | 502 | 503)
    }
}

impl Origin {
    /// A failure to reach Bedrock or to read its answer in time.
    pub(super) fn transport(&self, path: &str, e: &reqwest::Error) -> Error {
        let provider = self.provider.to_string();
        let endpoint = &self.endpoint;
        // A refused or timed-out connect is "unavailable", not a slow answer.
        if e.is_connect() {
            return Error::Unavailable {
                provider,
                message: format!("cannot connect to Bedrock at {endpoint} ({})", causes(e)),
            };
        }
        if e.is_timeout() {
            return Error::Timeout(format!(
                "provider `{provider}`: Bedrock at {endpoint} sent nothing for {}s on {path} (see the provider's \
                 `read_timeout`)",
                self.read_timeout.as_secs_f64()
            ));
        }
        Error::Upstream { provider, message: format!("request to {endpoint}{path} failed: {}", causes(e)) }
    }

    /// An answer we cannot use.
    pub(super) fn bad_answer(&self, path: &str, detail: impl std::fmt::Display) -> Error {
        Error::Upstream {
            provider: self.provider.to_string(),
            message: format!("unexpected answer from {}{path}: {detail}", self.endpoint),
        }
    }

    /// The error for a failure Bedrock reported about `model`, after `attempts` tries.
    pub(super) fn failure(&self, f: &Failure, model: &str, attempts: u32) -> Error {
        let provider = self.provider.to_string();
        let kind = if f.kind.is_empty() { format!("status {}", f.status) } else { f.kind.clone() };
        let what = if f.status == 0 {
            format!("the stream for model `{model}` stopped with {kind}: {}", f.message)
        } else {
            format!("Bedrock refused the request for model `{model}` ({kind}): {}", f.message)
        };
        match (f.kind.as_str(), f.status) {
            (
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignatureException"
                | "ExpiredTokenException"
                | "MissingAuthenticationTokenException",
                _,
            )
            | (_, 401 | 403) => Error::PermissionDenied(format!(
                "provider `{provider}`: {what}; check the AWS credentials (`aws_access_key_id`, \
                 `aws_secret_access_key`, `aws_session_token`, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the \
                 profile) and that the account has been granted access to the model in this region"
            )),
            ("ResourceNotFoundException", _) | (_, 404) => Error::invalid(format!(
                "provider `{provider}`: model `{model}` is not available at {} ({kind}): {}",
                self.endpoint, f.message
            )),
            ("ModelTimeoutException", _) | (_, 408 | 504) => Error::Timeout(format!("provider `{provider}`: {what}")),
            (
                "ThrottlingException"
                | "TooManyRequestsException"
                | "ServiceUnavailableException"
                | "ModelNotReadyException",
                _,
            )
            | (_, 429 | 503) => {
                let tries = if attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() };
                Error::Unavailable { provider, message: format!("{what}{tries}") }
            }
            ("ModelErrorException" | "ModelStreamErrorException" | "InternalServerException", _) => {
                Error::Upstream { provider, message: what }
            }
            ("ValidationException" | "ServiceQuotaExceededException", _) => {
                Error::invalid(format!("provider `{provider}`: {what}"))
            }
            (_, s) if (400..500).contains(&s) => Error::invalid(format!("provider `{provider}`: {what}")),
            _ => Error::Upstream { provider, message: what },
        }
    }
}

/// How often a call is tried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub max_attempts: u32,
}

impl Retry {
    /// The wait before attempt `next` (2, 3, ...): exponential from 100 ms, capped at 2 s, with
    /// jitter so clients throttled together do not come back together.
    fn backoff(next: u32) -> Duration {
        let base_ms = 100u64.saturating_mul(1 << next.saturating_sub(2).min(5)).min(2000);
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base_ms / 2 / 255;
        Duration::from_millis(base_ms / 2 + jitter)
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    /// Credentials, region and endpoint; when they could not be found, why.
    target: std::result::Result<Resolved, String>,
    retry: Retry,
    pub(super) origin: Origin,
}

impl Client {
    pub(crate) fn new(
        provider: &str,
        target: std::result::Result<Resolved, String>,
        connect_timeout: Duration,
        read_timeout: Duration,
        retry: Retry,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()
            .map_err(|e| Error::config(format!("provider `{provider}`: cannot set up an HTTP client: {e}")))?;
        let target = target.and_then(|t| match reqwest::Url::parse(&t.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(t),
            _ => Err(format!("the Bedrock endpoint `{}` is not an http(s) URL", t.endpoint)),
        });
        let endpoint = match &target {
            Ok(t) => t.endpoint.clone(),
            Err(_) => "an unresolved endpoint".to_owned(),
        };
        Ok(Self {
            http,
            target,
            retry,
            origin: Origin { provider: Arc::from(provider), endpoint: Arc::from(endpoint), read_timeout },
        })
    }

    /// Why requests cannot be made, if they cannot.
    pub(crate) fn setup_problem(&self) -> Option<&str> {
        self.target.as_ref().err().map(String::as_str)
    }

    fn target(&self) -> Result<&Resolved> {
        self.target.as_ref().map_err(|why| Error::Unavailable {
            provider: self.origin.provider.to_string(),
            message: format!("it is not set up to reach AWS Bedrock: {why}"),
        })
    }

    /// `POST /model/{model}/{action}`, signed, retried while Bedrock throttles. A response is
    /// returned as soon as its status is a success, so a stream is never retried once it began.
    async fn send(&self, model: &str, action: &str, body: &Value, accept: &str) -> Result<reqwest::Response> {
        let path = format!("/model/{}/{action}", signing::uri_encode(model, true));
        self.send_to(&path, model, body, accept).await
    }

    /// `POST path` (already URI-encoded), signed and retried like `send`; `what` names the
    /// resource in errors (a model id, a guardrail).
    async fn send_to(&self, path: &str, model: &str, body: &Value, accept: &str) -> Result<reqwest::Response> {
        let target = self.target()?;
        let url = reqwest::Url::parse(&format!("{}{path}", target.endpoint))
            .map_err(|e| self.origin.bad_answer(path, format!("cannot build the request URL: {e}")))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let payload = serde_json::to_vec(body).map_err(|e| Error::internal(format!("cannot encode a request: {e}")))?;
        let mut attempt = 1;
        loop {
            let request = signing::Request {
                method: "POST",
                host: &host,
                path: url.path(),
                query: url.query().unwrap_or_default(),
                headers: &[("accept", accept), ("content-type", "application/json")],
                payload: &payload,
            };
            let scope = Scope {
                credentials: &target.credentials,
                region: &target.region,
                service: SERVICE,
                time: chrono::Utc::now(),
            };
            let mut req = self
                .http
                .post(url.clone())
                .header(ACCEPT, accept)
                .header(CONTENT_TYPE, "application/json")
                .body(payload.clone());
            for (name, value) in signing::sign(&request, &scope) {
                req = req.header(name, value);
            }
            let resp = req.send().await.map_err(|e| self.origin.transport(path, &e))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let error_type = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
            // The body only explains the failure; if it cannot be read, the status still does.
            let bytes = resp.bytes().await.unwrap_or_default();
            let failure = Failure::read(status, error_type.as_deref(), &bytes);
            if failure.retryable() && attempt < self.retry.max_attempts {
                attempt += 1;
                tracing::debug!(provider = %self.origin.provider, kind = %failure.kind, attempt, "retrying a throttled Bedrock call");
                tokio::time::sleep(Retry::backoff(attempt)).await;
                continue;
            }
            return Err(self.origin.failure(&failure, model, attempt));
        }
    }

    /// A call answered by one JSON object.
    pub(super) async fn call<T: DeserializeOwned>(&self, model: &str, action: &str, body: &Value) -> Result<T> {
        let resp = self.send(model, action, body, "application/json").await?;
        let path = format!("/model/{model}/{action}");
        let bytes = resp.bytes().await.map_err(|e| self.origin.transport(&path, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.origin.bad_answer(&path, format!("{e}: {}", preview(&bytes))))
    }

    /// `POST path` (already URI-encoded) answered by one JSON object; `what` names the resource
    /// in errors.
    pub(crate) async fn call_path<T: DeserializeOwned>(&self, path: &str, what: &str, body: &Value) -> Result<T> {
        let resp = self.send_to(path, what, body, "application/json").await?;
        let bytes = resp.bytes().await.map_err(|e| self.origin.transport(path, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.origin.bad_answer(path, format!("{e}: {}", preview(&bytes))))
    }

    /// A call answered by an event stream. Status errors come back here, before any frame.
    pub(super) async fn stream(&self, model: &str, action: &str, body: &Value) -> Result<Frames> {
        let resp = self.send(model, action, body, EVENT_STREAM).await?;
        let origin = self.origin.clone();
        let path = format!("/model/{model}/{action}");
        Ok(eventstream::frames(resp.bytes_stream())
            .map(move |f| {
                f.map_err(|e| match e {
                    StreamError::Transport(e) => origin.transport(&path, &e),
                    StreamError::Malformed(m) => origin.bad_answer(&path, format!("a broken event stream: {m}")),
                })
            })
            .boxed())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            provider: Arc::from("bedrock0"),
            endpoint: Arc::from("https://bedrock-runtime.us-east-1.amazonaws.com"),
            read_timeout: Duration::from_secs(60),
        }
    }

    fn error(status: u16, kind: &str, message: &str) -> Error {
        let body = serde_json::json!({"message": message}).to_string();
        let f = Failure::read(StatusCode::from_u16(status).unwrap(), Some(kind), body.as_bytes());
        origin().failure(&f, "meta.llama3-1-8b-instruct-v1:0", 1)
    }

    #[test]
    fn bedrock_errors_map_to_statuses() {
        let e = error(400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", "bad input");
        assert_eq!(e.status_code(), 400);
        let text = e.to_string();
        assert!(
            text.contains("meta.llama3-1-8b-instruct-v1:0")
                && text.contains("ValidationException")
                && text.contains("bad input"),
            "{text}"
        );
        let e = error(403, "AccessDeniedException", "You don't have access");
        assert_eq!(e.status_code(), 403);
        assert!(e.to_string().contains("aws_access_key_id"), "{e}");
        assert_eq!(error(404, "ResourceNotFoundException", "no such model").status_code(), 400);
        assert_eq!(error(429, "ThrottlingException", "slow down").status_code(), 503);
        assert_eq!(error(503, "ServiceUnavailableException", "busy").status_code(), 503);
        assert_eq!(error(408, "ModelTimeoutException", "slow").status_code(), 504);
        assert_eq!(error(424, "ModelErrorException", "model broke").status_code(), 502);
        let e = error(500, "InternalServerException", "oops");
        assert!(
            matches!(&e, Error::Upstream { provider, message } if provider == "bedrock0" && message.contains("oops")),
            "{e:?}"
        );
    }

    #[test]
    fn failures_are_read_from_headers_or_body() {
        let f = Failure::read(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"__type": "com.amazon#ValidationException", "Message": "m"}"#,
        );
        assert_eq!((f.kind.as_str(), f.message.as_str()), ("ValidationException", "m"));
        let f = Failure::read(StatusCode::BAD_GATEWAY, None, b"<html>gateway</html>");
        assert_eq!((f.kind.as_str(), f.message.as_str()), ("", "<html>gateway</html>"));
        assert!(f.retryable());
        let f = Failure::from_stream("modelStreamErrorException", "the model failed");
        assert_eq!(f.kind, "ModelStreamErrorException");
        let e = origin().failure(&f, "m", 1);
        assert!(
            matches!(&e, Error::Upstream { message, .. } if message.contains("ModelStreamErrorException")),
            "{e:?}"
        );
        assert_eq!(origin().failure(&Failure::from_stream("throttlingException", "x"), "m", 1).status_code(), 503);
        assert!(!Failure::read(StatusCode::BAD_REQUEST, Some("ValidationException"), b"{}").retryable());
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        let first = Retry::backoff(2);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
        assert!(Retry::backoff(20) <= Duration::from_secs(2));
    }
}

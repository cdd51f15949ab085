//! The HTTP side of the providers that call a JSON-over-HTTP backend with a bearer key (an
//! OpenAI-compatible server, TGI, Together, Fireworks, Databricks): one pooled `reqwest` client
//! per instance, the key (from the config or the request's provider data), and the mapping of
//! transport failures and error answers onto the crate's error type, naming the provider.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::http_util::{causes, preview};
use super::sse::{self, SseStream};
use crate::error::{Error, Result};
use crate::providers::RequestContext;

/// How long to wait for a TCP connection. Short, so a stopped server fails fast even when the
/// whole-response timeout is minutes long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Listing models is quick; a server that takes longer than this is treated as unreachable.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);

/// A kind of backend, as error messages name it.
#[derive(Debug)]
pub struct Service {
    /// How messages refer to it: "the OpenAI-compatible server", "TGI".
    pub name: &'static str,
    /// The config field holding the key (`api_key`, `api_token`); empty when it takes none.
    pub key_config: &'static str,
    /// The provider-data key a client may send its own key under; empty when there is none.
    pub key_field: &'static str,
    /// Added to "cannot connect" errors, e.g. how to start the server.
    pub down_hint: &'static str,
    /// Added to "model not found" errors, with `{model}` standing for the model.
    pub missing_model_hint: &'static str,
}

impl Service {
    pub const fn new(name: &'static str, key_config: &'static str, key_field: &'static str) -> Self {
        Self { name, key_config, key_field, down_hint: "", missing_model_hint: "" }
    }

    #[must_use]
    pub const fn with_hints(self, down_hint: &'static str, missing_model_hint: &'static str) -> Self {
        Self { down_hint, missing_model_hint, ..self }
    }
}

/// Who we are talking to, carried into streams so their errors say so.
#[derive(Debug, Clone)]
pub struct Origin {
    pub provider: Arc<str>,
    pub base_url: Arc<str>,
    pub service: &'static Service,
}

impl Origin {
    /// A failure to reach the server or to read its answer in time.
    pub fn transport(&self, path: &str, e: &reqwest::Error) -> Error {
        let provider = self.provider.to_string();
        let base = &self.base_url;
        // A refused or timed-out connect is "unavailable", not a slow answer.
        if e.is_connect() {
            return Error::Unavailable {
                provider,
                message: format!(
                    "cannot connect to {} at {base} ({}){}",
                    self.service.name,
                    causes(e),
                    self.service.down_hint
                ),
            };
        }
        if e.is_timeout() {
            return Error::Timeout(format!(
                "provider `{provider}`: {} at {base} did not finish answering {path} in time (see the provider's `timeout`)",
                self.service.name
            ));
        }
        Error::Upstream { provider, message: format!("request to {base}{path} failed: {}", causes(e)) }
    }

    /// An answer we cannot use.
    pub fn bad_answer(&self, path: &str, detail: impl std::fmt::Display) -> Error {
        Error::Upstream {
            provider: self.provider.to_string(),
            message: format!("unexpected answer from {} at {}{path}: {detail}", self.service.name, self.base_url),
        }
    }

    /// An error the server sent in a body that came with a success status (an answer or a
    /// stream event): `{"error": ...}`, with TGI's `error_type` or `OpenAI`'s `error.type` saying
    /// whose fault it was.
    pub fn reported(&self, body: &Value) -> Error {
        let error = body.get("error").unwrap_or(body);
        let kind = body.get("error_type").or_else(|| error.get("type")).and_then(Value::as_str).unwrap_or_default();
        let message = format!("{} at {} reported: {}", self.service.name, self.base_url, error_text(error));
        let provider = self.provider.to_string();
        match kind {
            "validation" | "invalid_request_error" => Error::invalid(format!("provider `{provider}`: {message}")),
            "overloaded" => Error::Unavailable { provider, message },
            _ => Error::Upstream { provider, message },
        }
    }

    /// A non-success status. `model` is the served model the request was for.
    pub fn status(&self, path: &str, status: StatusCode, body: &[u8], model: Option<&str>) -> Error {
        let msg =
            serde_json::from_slice::<Value>(body).ok().and_then(|v| message_of(&v)).unwrap_or_else(|| preview(body));
        let provider = self.provider.to_string();
        let base = &self.base_url;
        let server = self.service.name;
        match status.as_u16() {
            401 | 403 => Error::PermissionDenied(format!(
                "provider `{provider}`: {server} at {base} refused the credentials ({msg}); {}",
                self.key_hint()
            )),
            404 if model.is_some() => {
                let model = model.unwrap_or_default();
                match self.service.missing_model_hint {
                    "" => Error::invalid(format!(
                        "provider `{provider}`: model `{model}` is not served by {base} ({msg})"
                    )),
                    hint => Error::invalid(format!(
                        "provider `{provider}`: model `{model}` is not available in {server} at {base} ({msg}); {}",
                        hint.replace("{model}", model)
                    )),
                }
            }
            408 | 504 => {
                Error::Timeout(format!("provider `{provider}`: {server} at {base} timed out on {path}: {msg}"))
            }
            429 | 503 => Error::Unavailable {
                provider,
                message: format!("{server} at {base} is busy or unavailable ({status}): {msg}"),
            },
            // TGI's "failed dependency": the model failed while generating.
            424 => Error::Upstream { provider, message: format!("{server} at {base} could not generate: {msg}") },
            s if (400..500).contains(&s) => {
                let subject = model.map_or_else(String::new, |m| format!(" for model `{m}`"));
                Error::invalid(format!("provider `{provider}`: {server} at {base} refused the request{subject}: {msg}"))
            }
            _ => {
                Error::Upstream { provider, message: format!("{server} at {base} answered {status} on {path}: {msg}") }
            }
        }
    }

    /// Where a key goes, for a refused or missing one.
    pub fn key_hint(&self) -> String {
        let config = self.service.key_config;
        match self.service.key_field {
            "" if config.is_empty() => "the server wants credentials this provider does not send".to_owned(),
            "" => format!("set `{config}` in the provider config"),
            field if config.is_empty() => format!("send `{field}` in the X-LlamaStack-ProviderData header"),
            field => {
                format!(
                    "set `{config}` in the provider config or send `{field}` in the X-LlamaStack-ProviderData header"
                )
            }
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> Self {
        static TEST: Service = Service::new("the server", "api_key", "openai_api_key");
        Self { provider: Arc::from("openai"), base_url: Arc::from("http://localhost:8000/v1"), service: &TEST }
    }
}

/// The message of an error body in any of the shapes servers use: `OpenAI`'s
/// `{"error": {"message"}}`, `{"error": "..."}` (Ollama, llama.cpp), or `{"detail": ...}`.
fn message_of(body: &Value) -> Option<String> {
    if let Some(e) = body.get("error") {
        return Some(error_text(e));
    }
    match body.get("detail").or_else(|| body.get("message"))? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    }
}

/// Reads one JSON answer, refusing an `{"error": ...}` body even when it came with 200.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], origin: &Origin, path: &str) -> Result<T> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| origin.bad_answer(path, format!("not JSON ({e}): {}", preview(bytes))))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(origin.reported(&value));
    }
    serde_json::from_value(value).map_err(|e| origin.bad_answer(path, format!("{e}: {}", preview(bytes))))
}

pub struct Client {
    http: reqwest::Client,
    /// The whole-response timeout from the config.
    timeout: Duration,
    api_key: Option<String>,
    pub origin: Origin,
}

impl Client {
    pub fn new(
        provider: &str,
        service: &'static Service,
        base_url: String,
        timeout: Duration,
        api_key: Option<String>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| Error::config(format!("provider `{provider}`: cannot set up an HTTP client: {e}")))?;
        let api_key = api_key.filter(|k| !k.trim().is_empty());
        Ok(Self {
            http,
            timeout,
            api_key,
            origin: Origin { provider: Arc::from(provider), base_url: Arc::from(base_url), service },
        })
    }

    /// The key to send: the configured one, else the one the request carries. A server that
    /// needs none (vLLM, llama.cpp, LM Studio, a local TGI) gets no `Authorization` header.
    pub fn key<'a>(&'a self, ctx: Option<&'a RequestContext>) -> Option<&'a str> {
        let field = self.origin.service.key_field;
        self.api_key.as_deref().or_else(|| {
            ctx.filter(|_| !field.is_empty()).and_then(|c| c.provider_string(field)).filter(|k| !k.trim().is_empty())
        })
    }

    fn request(&self, method: reqwest::Method, path: &str, ctx: Option<&RequestContext>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.origin.base_url));
        match self.key(ctx) {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str, model: Option<&str>) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|e| self.origin.transport(path, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        // The body only explains the failure; if it cannot be read, the status still does.
        let body = resp.bytes().await.unwrap_or_default();
        Err(self.origin.status(path, status, &body, model))
    }

    async fn read<T: DeserializeOwned>(&self, resp: reqwest::Response, path: &str) -> Result<T> {
        let bytes = resp.bytes().await.map_err(|e| self.origin.transport(path, &e))?;
        decode(&bytes, &self.origin, path)
    }

    /// `GET path` with the configured key, given at most the short listing timeout.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let req = self.request(reqwest::Method::GET, path, None).timeout(LISTING_TIMEOUT.min(self.timeout));
        let resp = self.send(req, path, None).await?;
        self.read(resp, path).await
    }

    /// `POST path` with a JSON body, answered by one JSON object.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        model: &str,
        ctx: &RequestContext,
    ) -> Result<T> {
        let req = self.request(reqwest::Method::POST, path, Some(ctx)).json(body);
        let resp = self.send(req, path, Some(model)).await?;
        self.read(resp, path).await
    }

    /// `POST path`, for a body the caller reads itself (e.g. newline-delimited JSON). Status
    /// errors come back here, before any of the body.
    pub async fn post_response(
        &self,
        path: &str,
        body: &Value,
        model: &str,
        ctx: &RequestContext,
    ) -> Result<reqwest::Response> {
        let req = self.request(reqwest::Method::POST, path, Some(ctx)).json(body);
        self.send(req, path, Some(model)).await
    }

    /// `POST path` answered by server-sent events. Status errors come back here, before any event.
    pub async fn post_stream(
        &self,
        path: &'static str,
        body: &Value,
        model: &str,
        ctx: &RequestContext,
    ) -> Result<SseStream> {
        let req = self.request(reqwest::Method::POST, path, Some(ctx)).header("accept", "text/event-stream").json(body);
        let resp = self.send(req, path, Some(model)).await?;
        Ok(sse::events(resp.bytes_stream(), self.origin.clone(), path))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    fn status(code: u16, body: &Value, model: Option<&str>) -> Error {
        let o = Origin::for_tests();
        o.status("/chat/completions", StatusCode::from_u16(code).unwrap(), body.to_string().as_bytes(), model)
    }

    #[test]
    fn error_bodies_become_errors_naming_the_provider() {
        let openai = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
        let e = status(401, &openai, Some("gpt-4o"));
        assert_eq!(e.status_code(), 403);
        assert!(e.to_string().contains("provider `openai`") && e.to_string().contains("openai_api_key"), "{e}");
        let e = status(404, &json!({"error": "model 'x' not found"}), Some("x"));
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("model `x`") && e.to_string().contains("not found"), "{e}");
        let e = status(400, &json!({"detail": "bad things"}), Some("m"));
        assert!(e.to_string().contains("bad things") && e.to_string().contains("provider `openai`"), "{e}");
        assert_eq!(status(503, &json!({}), None).status_code(), 503);
        assert_eq!(status(504, &json!({}), None).status_code(), 504);
        let e = status(500, &json!({"error": {"message": "CUDA out of memory"}}), Some("m"));
        assert!(matches!(&e, Error::Upstream { message, .. } if message.contains("CUDA out of memory")), "{e:?}");
        let e = Origin::for_tests().status("/models", StatusCode::BAD_GATEWAY, b"<html>oops</html>", None);
        assert!(e.to_string().contains("<html>oops"), "{e}");
    }

    #[test]
    fn answers_with_an_error_object_are_errors() {
        let o = Origin::for_tests();
        let e = decode::<Value>(br#"{"error": {"message": "overloaded"}}"#, &o, "/chat/completions").err();
        assert!(matches!(&e, Some(Error::Upstream { message, .. }) if message.contains("overloaded")), "{e:?}");
        assert!(decode::<Value>(br#"{"error": null, "id": "x"}"#, &o, "/x").is_ok());
        assert!(decode::<Value>(b"nope", &o, "/x").is_err_and(|e| e.status_code() == 502));
    }

    #[test]
    fn the_configured_key_wins_over_the_request_one() {
        let ctx = RequestContext::from_header(Some(r#"{"openai_api_key": "from-request"}"#));
        let service = Origin::for_tests().service;
        let with = Client::new("p", service, "http://x/v1".into(), Duration::from_secs(1), Some("from-config".into()))
            .unwrap();
        assert_eq!(with.key(Some(&ctx)), Some("from-config"));
        let without =
            Client::new("p", service, "http://x/v1".into(), Duration::from_secs(1), Some(" ".into())).unwrap();
        assert_eq!(without.key(Some(&ctx)), Some("from-request"));
        assert_eq!(without.key(None), None);
    }
}

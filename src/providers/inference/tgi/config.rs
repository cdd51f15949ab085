//! The configs of the three provider types (all optional here; the registry has already checked
//! the required ones), read into where the server is and how to talk to it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Default home of the serverless Inference API; a model's routes are under `/models/<repo>`.
pub(super) const SERVERLESS_API: &str = "https://api-inference.huggingface.co";
/// Default home of the Inference Endpoints API.
pub(super) const ENDPOINTS_API: &str = "https://api.endpoints.huggingface.cloud/v2";

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    huggingface_repo: Option<String>,
    #[serde(default)]
    endpoint_name: Option<String>,
    #[serde(default)]
    api_token: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    wait: Option<f64>,
    #[serde(default)]
    tokenizer: Option<String>,
}

/// Where the generating server is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// A TGI server at a known URL.
    Tgi { url: String },
    /// The serverless Inference API: `model_url` is `<api>/models/<repo>`.
    Serverless { model_url: String, repo: String },
    /// A dedicated Inference Endpoint, found through the endpoints API.
    Endpoint { api_url: String, namespace: String, name: String, wait: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Settings {
    pub source: Source,
    pub api_token: Option<String>,
    pub timeout: Duration,
    pub tokenizer: Option<PathBuf>,
}

fn seconds(value: Option<f64>, default: f64, field: &str) -> Result<Duration> {
    let secs = value.unwrap_or(default);
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::config(format!("`{field}` must be a positive number of seconds, got {secs}")))
}

/// A base URL without its trailing slash; a bare `host:port` means plain HTTP.
fn base_url(raw: &str, field: &str) -> Result<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::config(format!("`{field}` must be a URL, got an empty string")));
    }
    let url = if raw.contains("://") { raw.to_owned() } else { format!("http://{raw}") };
    let url = url.trim_end_matches('/').to_owned();
    reqwest::Url::parse(&url).map_err(|e| Error::config(format!("`{field}`: `{url}` is not a valid URL: {e}")))?;
    Ok(url)
}

/// A namespace or endpoint name: letters, digits, `-`, `_`, `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `namespace/name`. Upstream let the namespace default to the token's own account, which needs
/// a look-up of who the token belongs to; here it must be written out.
fn endpoint_name(raw: &str, field: &str) -> Result<(String, String)> {
    let raw = raw.trim();
    match raw.split_once('/') {
        Some((ns, name)) if is_name(ns) && is_name(name) => Ok((ns.to_owned(), name.to_owned())),
        _ => Err(Error::config(format!(
            "`{field}` must be `namespace/name` (the account or organisation, a slash, and the endpoint's name, \
             e.g. `my-org/llama-3-1-8b-instruct-abc`), got `{raw}`"
        ))),
    }
}

impl RawConfig {
    fn api_url(&self, default: &str, at: &str) -> Result<String> {
        match self.api_url.as_deref() {
            Some(u) => base_url(u, &format!("{at}.api_url")),
            None => Ok(default.to_owned()),
        }
    }

    fn common(&self, source: Source, at: &str) -> Result<Settings> {
        let tokenizer = self.tokenizer.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from);
        Ok(Settings {
            source,
            api_token: self.api_token.clone().filter(|t| !t.trim().is_empty()),
            timeout: seconds(self.timeout, 300.0, &format!("{at}.timeout"))?,
            tokenizer,
        })
    }

    /// `remote::tgi`.
    pub fn tgi(&self, at: &str) -> Result<Settings> {
        let url = base_url(self.url.as_deref().unwrap_or_default(), &format!("{at}.url"))?;
        self.common(Source::Tgi { url }, at)
    }

    /// `remote::hf::serverless`.
    pub fn serverless(&self, at: &str) -> Result<Settings> {
        let repo = self.huggingface_repo.as_deref().map(str::trim).unwrap_or_default();
        if repo.is_empty() || repo.contains(char::is_whitespace) || repo.starts_with('/') || repo.ends_with('/') {
            return Err(Error::config(format!(
                "`{at}.huggingface_repo` must be a model repository such as `meta-llama/Llama-3.1-8B-Instruct`, got `{repo}`"
            )));
        }
        let model_url = format!("{}/models/{repo}", self.api_url(SERVERLESS_API, at)?);
        self.common(Source::Serverless { model_url, repo: repo.to_owned() }, at)
    }

    /// `remote::hf::endpoint`.
    pub fn endpoint(&self, at: &str) -> Result<Settings> {
        let field = format!("{at}.endpoint_name");
        let (namespace, name) = endpoint_name(self.endpoint_name.as_deref().unwrap_or_default(), &field)?;
        let api_url = self.api_url(ENDPOINTS_API, at)?;
        let wait = seconds(self.wait, 10.0, &format!("{at}.wait"))?;
        self.common(Source::Endpoint { api_url, namespace, name, wait }, at)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn raw(v: Value) -> RawConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tgi_and_serverless() {
        let s = raw(json!({"url": "http://gpu:8080/", "api_token": " ", "timeout": 2.5})).tgi("p.config").unwrap();
        assert_eq!(s.source, Source::Tgi { url: "http://gpu:8080".into() });
        assert_eq!((s.api_token, s.timeout), (None, Duration::from_millis(2500)));
        assert_eq!(
            raw(json!({"url": "gpu:8080"})).tgi("p").unwrap().source,
            Source::Tgi { url: "http://gpu:8080".into() }
        );
        assert!(raw(json!({"url": "http://"})).tgi("p.config").unwrap_err().to_string().contains("p.config.url"));
        assert!(
            raw(json!({"url": "x", "timeout": 0}))
                .tgi("p.config")
                .unwrap_err()
                .to_string()
                .contains("p.config.timeout")
        );

        let s = raw(json!({"huggingface_repo": "meta-llama/Llama-3.1-8B-Instruct", "api_token": "hf_x"}))
            .serverless("p")
            .unwrap();
        let Source::Serverless { model_url, repo } = s.source else { unreachable!() };
        assert_eq!(model_url, "https://api-inference.huggingface.co/models/meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!((repo.as_str(), s.api_token.as_deref()), ("meta-llama/Llama-3.1-8B-Instruct", Some("hf_x")));
        let s = raw(json!({"huggingface_repo": "gpt2", "api_url": "http://127.0.0.1:9/hf/"})).serverless("p").unwrap();
        assert_eq!(
            s.source,
            Source::Serverless { model_url: "http://127.0.0.1:9/hf/models/gpt2".into(), repo: "gpt2".into() }
        );
        let e = raw(json!({"huggingface_repo": "a b"})).serverless("p.config").unwrap_err().to_string();
        assert!(e.contains("p.config.huggingface_repo"), "{e}");
    }

    #[test]
    fn endpoint_names() {
        let s = raw(json!({"endpoint_name": "my-org/llama-8b", "wait": 0.5})).endpoint("p.config").unwrap();
        assert_eq!(
            s.source,
            Source::Endpoint {
                api_url: ENDPOINTS_API.into(),
                namespace: "my-org".into(),
                name: "llama-8b".into(),
                wait: Duration::from_millis(500)
            }
        );
        for bad in ["llama-8b", "/llama", "org/", "org/a/b", "org/a b", ""] {
            let e = raw(json!({"endpoint_name": bad})).endpoint("p.config").unwrap_err();
            assert!(matches!(&e, Error::Config(m) if m.contains("p.config.endpoint_name")), "{bad}: {e}");
        }
    }
}

//! The one HTTP call the web tools make: a GET with query parameters and headers whose answer
//! is JSON, with failures turned into errors that name the tool and the service.

use std::error::Error as _;

use serde_json::Value;

use crate::error::{Error, Result};

/// Who is called, as error messages name it.
pub struct Service {
    /// The tool's name, used as the error's provider (`brave_search`).
    pub tool: &'static str,
    /// The service in words (`Brave Search`).
    pub name: &'static str,
}

/// GETs `url` with `params` and `headers` and reads the answer as JSON.
pub async fn get_json(
    client: &reqwest::Client,
    service: &Service,
    url: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Result<Value> {
    let mut req = client.get(url).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(|e| transport(service, url, &e))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| transport(service, url, &e))?;
    if !status.is_success() {
        return Err(Error::Upstream {
            provider: service.tool.to_owned(),
            message: format!("{} at {url} answered {status}: {}", service.name, preview(&body)),
        });
    }
    serde_json::from_slice(&body).map_err(|e| Error::Upstream {
        provider: service.tool.to_owned(),
        message: format!("{} at {url} answered something that is not JSON ({e}): {}", service.name, preview(&body)),
    })
}

fn transport(service: &Service, url: &str, e: &reqwest::Error) -> Error {
    let provider = service.tool.to_owned();
    if e.is_timeout() {
        return Error::Timeout(format!(
            "tool `{provider}`: {} at {url} did not answer in time (see the agents provider's `tools.timeout`)",
            service.name
        ));
    }
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        next = cause.source();
    }
    Error::Unavailable { provider, message: format!("cannot reach {} at {url} ({text})", service.name) }
}

/// The start of a body, for error messages.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(300).collect();
    if text.chars().nth(300).is_some() {
        out.push('…');
    }
    out
}

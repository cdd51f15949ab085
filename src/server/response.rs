//! Turning results into HTTP responses: error shapes and SSE framing, in the dialect of the
//! route (upstream's for the Llama Stack routes, `OpenAI`'s for `/v1/*`).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::api::{Group, Reply};
use crate::error::Error;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, JSON);
    r
}

/// The body upstream's server gives each error: validation problems under
/// `error.detail.errors`, everything else as `{"detail": "<prefix>: <message>"}`.
pub fn error_body(e: &Error) -> serde_json::Value {
    match e {
        Error::Validation(issues) => json!({"error": {"detail": {"errors": issues}}}),
        Error::Io(_) | Error::Storage(_) | Error::Internal(_) => {
            json!({"detail": "Internal server error: An unexpected error occurred."})
        }
        other => json!({"detail": other.detail()}),
    }
}

pub fn error_response(e: &Error) -> Response {
    Dialect::LlamaStack.error(e)
}

pub fn simple_error(status: StatusCode, detail: &str) -> Response {
    json_response(status, Bytes::from(json!({"detail": detail}).to_string()))
}

/// One SSE frame: `data: <json>\n\n`, the framing upstream's server and client use.
fn frame(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    b.put_slice(b"data: ");
    b.put_slice(payload);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// The wire conventions of a route. Both frame stream events as `data: <json>\n\n`; they differ
/// in error bodies and in how a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Upstream's: `{"detail": ...}` errors, and a stream that simply ends.
    LlamaStack,
    /// `OpenAI`'s (`/v1/*`): `{"error": {"message", "type", "param", "code"}}` errors, and
    /// `data: [DONE]` after the last event of a stream that ended well.
    OpenAi,
}

impl Dialect {
    pub fn of(group: Group) -> Self {
        match group {
            Group::Extension("openai") => Self::OpenAi,
            _ => Self::LlamaStack,
        }
    }

    fn error_body(self, e: &Error) -> Value {
        match self {
            Self::LlamaStack => error_body(e),
            Self::OpenAi => openai_error_body(e),
        }
    }

    pub fn error(self, e: &Error) -> Response {
        let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!("{e}");
        } else {
            tracing::debug!("{e}");
        }
        json_response(status, Bytes::from(self.error_body(e).to_string()))
    }

    pub fn simple_error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Self::LlamaStack => simple_error(status, message),
            Self::OpenAi => {
                let body = openai_error(message, status.as_u16(), None, None);
                json_response(status, Bytes::from(body.to_string()))
            }
        }
    }

    pub fn reply(self, reply: Reply) -> Response {
        let stream = match reply {
            Reply::Json(body) => return json_response(StatusCode::OK, body),
            Reply::Stream(stream) => stream,
        };
        // After the first error the stream ends: the error is sent as one more event in the
        // shape the dialect's clients look for, and logged here. `None` marks the natural end.
        let terminator = (self == Self::OpenAi).then_some(Bytes::from_static(b"data: [DONE]\n\n"));
        let framed = stream
            .map(Some)
            .chain(futures::stream::once(futures::future::ready(None)))
            .scan(false, move |failed, item| {
                if *failed {
                    return futures::future::ready(None);
                }
                let out = match item {
                    Some(Ok(event)) => frame(&event),
                    Some(Err(e)) => {
                        *failed = true;
                        tracing::error!("error while streaming: {e}");
                        let body = match self {
                            Self::LlamaStack => json!({"error": {"message": e.detail()}}),
                            Self::OpenAi => openai_error_body(&e),
                        };
                        frame(body.to_string().as_bytes())
                    }
                    None => match &terminator {
                        Some(done) => done.clone(),
                        None => return futures::future::ready(None),
                    },
                };
                futures::future::ready(Some(out))
            })
            // Events already waiting are written together: one write instead of one per event
            // when a backend sends faster than the client reads, and no wait when it does not.
            .ready_chunks(64)
            .map(|frames| {
                Ok::<_, std::convert::Infallible>(if frames.len() == 1 {
                    frames.into_iter().next().unwrap_or_default()
                } else {
                    let mut buf = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
                    for f in &frames {
                        buf.put_slice(f);
                    }
                    buf.freeze()
                })
            })
            .boxed();
        let mut r = Response::new(Body::from_stream(framed));
        r.headers_mut().insert(header::CONTENT_TYPE, EVENT_STREAM);
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

/// An error in `OpenAI`'s shape. `param` is the offending body field of a validation problem and
/// `code` its kind; other errors carry a code for their class.
pub fn openai_error_body(e: &Error) -> Value {
    let status = e.status_code();
    match e {
        Error::Validation(issues) => {
            let message = issues.iter().map(|i| format!("{}: {}", param(&i.loc), i.msg)).collect::<Vec<_>>().join("; ");
            let first = issues.first();
            openai_error(&message, status, first.map(|i| param(&i.loc)).as_deref(), first.map(|i| i.kind.as_str()))
        }
        Error::Io(_) | Error::Storage(_) | Error::Internal(_) => {
            openai_error("Internal server error: An unexpected error occurred.", status, None, Some("internal_error"))
        }
        other => {
            let code = match other {
                Error::Upstream { .. } => Some("upstream_error"),
                Error::Unavailable { .. } => Some("service_unavailable"),
                Error::Timeout(_) => Some("timeout"),
                Error::NotImplemented(_) => Some("not_implemented"),
                Error::PermissionDenied(_) => Some("permission_denied"),
                _ => None,
            };
            openai_error(&other.to_string(), status, None, code)
        }
    }
}

fn openai_error(message: &str, status: u16, param: Option<&str>, code: Option<&str>) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        501 => "not_implemented_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// A field location as `OpenAI` names parameters: `messages[0].content`, without the `body` root.
fn param(loc: &[String]) -> String {
    let mut out = String::new();
    for part in loc.iter().skip_while(|p| *p == "body" || *p == "query") {
        if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() {
            out.push('[');
            out.push_str(part);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_errors_name_the_parameter_and_class() {
        let e = Error::field(&["body", "messages", "0", "content"], "Field required", "missing");
        assert_eq!(
            openai_error_body(&e),
            json!({"error": {"message": "messages[0].content: Field required", "type": "invalid_request_error",
                             "param": "messages[0].content", "code": "missing"}})
        );
        let e = Error::Unavailable { provider: "p".into(), message: "down".into() };
        let body = openai_error_body(&e);
        assert_eq!(
            (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
            (Some("server_error"), Some("service_unavailable"))
        );
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("provider `p`")));
        let body = openai_error_body(&Error::internal("secret detail"));
        assert!(!body.to_string().contains("secret"));
        assert_eq!(openai_error_body(&Error::invalid("bad"))["error"]["param"], Value::Null);
    }

    async fn body_of(dialect: Dialect, items: Vec<crate::error::Result<Bytes>>) -> String {
        let reply = Reply::Stream(futures::stream::iter(items).boxed());
        let bytes = axum::body::to_bytes(dialect.reply(reply).into_body(), usize::MAX).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn openai_streams_end_with_done_unless_they_fail() {
        let ok = || Ok(Bytes::from_static(b"{\"n\":1}"));
        assert_eq!(
            body_of(Dialect::OpenAi, vec![ok(), ok()]).await,
            "data: {\"n\":1}\n\ndata: {\"n\":1}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(body_of(Dialect::LlamaStack, vec![ok()]).await, "data: {\"n\":1}\n\n");
        let failed = body_of(Dialect::OpenAi, vec![ok(), Err(Error::Timeout("slow".into())), ok()]).await;
        let frames: Vec<&str> = failed.split("\n\n").filter(|f| !f.is_empty()).collect();
        assert_eq!(frames.len(), 2, "{failed}");
        let error: Value = serde_json::from_str(frames[1].trim_start_matches("data: ")).unwrap_or_default();
        assert_eq!(error["error"]["code"], "timeout");
        let failed = body_of(Dialect::LlamaStack, vec![Err(Error::Timeout("slow".into()))]).await;
        assert!(failed.starts_with("data: {\"error\":{\"message\":\"Operation timed out: slow\"}}"), "{failed}");
    }

    #[test]
    fn dialects_by_group() {
        assert_eq!(Dialect::of(Group::Extension("openai")), Dialect::OpenAi);
        assert_eq!(Dialect::of(Group::Api(crate::config::Api::Inference)), Dialect::LlamaStack);
    }
}

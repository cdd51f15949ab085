//! The operation table: every route of the 0.0.41 API as one entry (path, method, API,
//! handler). The HTTP server and the Python bridge both dispatch through it, so a request
//! behaves the same through either door.

mod agents;
mod declared;
mod inference;
mod inspect;
mod memory;
mod openai;
mod registries;
mod safety;
mod telemetry;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Api;
use crate::error::{Error, FieldIssue, Result};
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::schema::parse_json;

/// A request as the operation table sees it: the raw JSON body and the query pairs.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub body: Bytes,
    pub query: Vec<(String, String)>,
}

/// What an operation answers: one JSON document, or a stream of JSON documents (one per event).
pub enum Reply {
    Json(Bytes),
    Stream(BoxStream<'static, Result<Bytes>>),
}

impl Reply {
    pub fn json<T: Serialize>(value: &T) -> Result<Self> {
        serde_json::to_vec(value).map(|v| Self::Json(Bytes::from(v))).map_err(|e| Error::internal(e.to_string()))
    }
}

/// Serialises each item of a stream of events.
pub fn event_stream<T, S>(stream: S) -> Reply
where
    T: Serialize + Send + 'static,
    S: futures::Stream<Item = Result<T>> + Send + 'static,
{
    use futures::StreamExt;
    Reply::Stream(
        stream
            .map(|item| {
                item.and_then(|v| serde_json::to_vec(&v).map(Bytes::from).map_err(|e| Error::internal(e.to_string())))
            })
            .boxed(),
    )
}

pub type Handler = fn(Arc<Stack>, Args, RequestContext) -> BoxFuture<'static, Result<Reply>>;

/// The group a route belongs to: one of the nine served APIs, or one the spec only declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Api(Api),
    Declared(&'static str),
    /// Routes beyond the 0.0.41 API (the OpenAI-compatible `/v1/*`).
    Extension(&'static str),
}

#[derive(Clone)]
pub struct Method {
    pub path: &'static str,
    /// The spec's method.
    pub method: http::Method,
    /// Also accepted with the other method: the server of the era mounted POST where the spec
    /// says GET for a few routes, and the official client follows the spec.
    pub both: bool,
    pub group: Group,
    pub handler: Handler,
}

macro_rules! op {
    ($method:ident $path:literal, $group:expr, $handler:expr) => {
        Method { path: $path, method: http::Method::$method, both: false, group: $group, handler: $handler }
    };
    ($method:ident $path:literal both, $group:expr, $handler:expr) => {
        Method { path: $path, method: http::Method::$method, both: true, group: $group, handler: $handler }
    };
}
pub(crate) use op;

/// Every route, in the spec's order within each API.
pub fn operations() -> Vec<Method> {
    let mut ops = Vec::with_capacity(64);
    ops.extend(agents::operations());
    ops.extend(inference::operations());
    ops.extend(inspect::operations());
    ops.extend(memory::operations());
    ops.extend(registries::operations());
    ops.extend(safety::operations());
    ops.extend(telemetry::operations());
    ops.extend(declared::operations());
    ops.extend(openai::operations());
    ops.extend(memory::extensions());
    ops
}

impl Args {
    pub fn new(body: Bytes, query: Vec<(String, String)>) -> Self {
        Self { body, query }
    }

    /// Reads the body as `T`. An empty body reads as `{}` so a request whose fields all have
    /// defaults needs none.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}", "body");
        }
        parse_json(&self.body, "body")
    }

    /// A parameter from the query string, or failing that from a JSON body (some routes are
    /// sent both ways by different clients).
    pub fn param(&self, name: &str) -> Result<Option<String>> {
        if let Some((_, v)) = self.query.iter().find(|(k, _)| k == name) {
            return Ok(Some(v.clone()));
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let body: Value = parse_json(&self.body, "body")?;
        Ok(match body.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        })
    }

    pub fn required(&self, name: &str) -> Result<String> {
        self.param(name)?.ok_or_else(|| {
            Error::Validation(vec![FieldIssue {
                loc: vec!["query".into(), name.into()],
                msg: "Field required".into(),
                kind: "missing".into(),
            }])
        })
    }
}

/// Runs one operation: the single door for HTTP and in-process calls. Every call is the root
/// span of a new trace (or a child of the caller's span when the context is already traced); a
/// streamed reply keeps its span open until the stream ends.
pub async fn dispatch(op: &Method, stack: Arc<Stack>, args: Args, mut ctx: RequestContext) -> Result<Reply> {
    let span = if ctx.trace.is_active() { ctx.span(op.path) } else { stack.tracer.root(op.path, None) };
    ctx.trace = span.context();
    match span.record((op.handler)(stack, args, ctx).await)? {
        Reply::Stream(s) => {
            use futures::StreamExt;
            Ok(Reply::Stream(span.wrap_stream(s).boxed()))
        }
        json @ Reply::Json(_) => Ok(json),
    }
}

/// Checks that `stack` serves `api`, else the error says how to configure it.
pub fn ensure_served(stack: &Stack, api: Api) -> Result<()> {
    if stack.serves(api) && !stack.unavailable.contains_key(&api) { Ok(()) } else { Err(stack.not_served(api)) }
}

/// Finds the operation for a path and method. `None` when the path is unknown; an error naming
/// the allowed method when only the method is wrong.
pub fn find<'a>(
    ops: &'a [Method],
    path: &str,
    method: &http::Method,
) -> Option<std::result::Result<&'a Method, http::Method>> {
    let op = ops.iter().find(|o| o.path == path)?;
    let ok = op.method == method || (op.both && (method == http::Method::GET || method == http::Method::POST));
    Some(if ok { Ok(op) } else { Err(op.method.clone()) })
}

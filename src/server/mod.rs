//! The HTTP server: every operation of the table mounted at its path, upstream's error shapes,
//! SSE for streams, a JSON 404/405/413, panics caught per request, and a graceful stop on
//! SIGINT/SIGTERM.

mod response;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use axum::serve::ListenerExt;
use bytes::Bytes;
use http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};

pub use response::error_body;
use response::{Dialect, simple_error};

use crate::api::{self, Args, Method};
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::stack::Stack;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

const PROVIDER_DATA_HEADER: &str = "x-llamastack-providerdata";
/// A request carrying these joins the caller's trace (under that span); every traced response names
/// its trace in the first.
const TRACE_ID_HEADER: &str = "x-llamastack-trace-id";
const SPAN_ID_HEADER: &str = "x-llamastack-span-id";

/// The `OpenAPI` document this server describes itself with (generated from the Python models).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

#[derive(Clone)]
struct AppState {
    stack: Arc<Stack>,
}

/// Builds the router for a stack.
pub fn router(stack: Arc<Stack>) -> Router {
    router_for(stack, api::operations())
}

/// Builds a router serving `ops` (the full table in production; tests add their own).
pub fn router_for(stack: Arc<Stack>, ops: Vec<Method>) -> Router {
    let mut router = Router::new();
    for op in ops {
        let op = Arc::new(op);
        router = router.route(
            op.path,
            any(move |state: State<AppState>, method: HttpMethod, uri: Uri, headers: HeaderMap, body: Body| {
                let op = Arc::clone(&op);
                async move { handle(state.0, &op, method, uri, headers, body).await }
            }),
        );
    }
    router
        .route(
            "/openapi.json",
            axum::routing::get(|| async {
                response::json_response(StatusCode::OK, Bytes::from_static(OPENAPI_JSON.as_bytes()))
            }),
        )
        .fallback(|uri: Uri| async move {
            simple_error(StatusCode::NOT_FOUND, &format!("Not Found: no route `{}`", uri.path()))
        })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_panic| {
            tracing::error!("a request handler panicked; the server keeps serving");
            simple_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error: An unexpected error occurred.")
        }))
        .with_state(AppState { stack })
}

async fn handle(
    state: AppState,
    op: &Method,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::of(op.group);
    let allowed = method == op.method || (op.both && (method == HttpMethod::GET || method == HttpMethod::POST));
    if !allowed {
        return dialect.simple_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method Not Allowed: `{}` takes {}", op.path, op.method),
        );
    }
    let query = match uri.query().map(serde_urlencoded::from_str::<Vec<(String, String)>>) {
        None => Vec::new(),
        Some(Ok(q)) => q,
        Some(Err(e)) => return dialect.error(&Error::field(&["query"], e.to_string(), "value_error")),
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return dialect.simple_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {} MiB", MAX_BODY_BYTES / (1024 * 1024)),
        );
    };
    let mut ctx = RequestContext::from_header(headers.get(PROVIDER_DATA_HEADER).and_then(|v| v.to_str().ok()));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    ctx.trace = state.stack.tracer.context(header(TRACE_ID_HEADER), header(SPAN_ID_HEADER));
    let trace_id = ctx.trace.trace_id().and_then(|t| http::HeaderValue::from_str(t).ok());
    let mut response = match api::dispatch(op, state.stack, Args::new(body, query), ctx).await {
        Ok(reply) => dialect.reply(reply),
        Err(e) => dialect.error(&e),
    };
    if let Some(t) = trace_id {
        response.headers_mut().insert(TRACE_ID_HEADER, t);
    }
    response
}

/// Where to listen.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: Option<String>,
    pub port: u16,
    pub disable_ipv6: bool,
}

async fn bind(opts: &ServeOptions) -> Result<tokio::net::TcpListener> {
    let hosts: Vec<String> = match &opts.host {
        Some(h) => vec![h.clone()],
        // `::` takes IPv4 too on a dual-stack host; fall back where IPv6 is off.
        None if !opts.disable_ipv6 => vec!["::".into(), "0.0.0.0".into()],
        None => vec!["0.0.0.0".into()],
    };
    let mut last = None;
    for host in hosts {
        match tokio::net::TcpListener::bind((host.as_str(), opts.port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(format!("cannot listen on {host}:{}: {e}", opts.port)),
        }
    }
    Err(Error::config(last.unwrap_or_else(|| "no address to listen on".into())))
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves `stack` until `stop` resolves; in-flight requests finish first.
pub async fn serve(
    stack: Arc<Stack>,
    opts: ServeOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = bind(&opts).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let apis: Vec<&str> = stack.served.iter().map(|a| a.as_str()).collect();
    tracing::info!("serving {} on http://{addr} (APIs: {})", stack.config.image_name, apis.join(", "));
    for (api, why) in &stack.unavailable {
        tracing::warn!("{api}: {why}");
    }
    let app = router(Arc::clone(&stack));
    // Events are small writes that must leave at once: without TCP_NODELAY, Nagle's algorithm
    // holds each one back until the previous is acknowledged.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    tracing::info!("shutting down");
    stack.shutdown().await;
    Ok(())
}

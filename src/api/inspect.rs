//! `/providers/list`, `/routes/list`, `/health`: what the stack says about itself.

use std::sync::Arc;

use futures::FutureExt;
use indexmap::IndexMap;
use serde_json::json;

use super::{Group, Method, Reply, op, operations as all_operations};
use crate::config::Api;
use crate::error::Result;
use crate::stack::Stack;
use crate::types::inspect::{ProviderInfo, RouteInfo};

const G: Group = Group::Api(Api::Inspect);

pub fn operations() -> Vec<Method> {
    vec![
        op!(GET "/providers/list", G, |s, _, _| async move { list_providers(&s) }.boxed()),
        op!(GET "/routes/list", G, |s, _, _| async move { list_routes(&s) }.boxed()),
        op!(GET "/health", G, |_, _, _| async move { Reply::json(&json!({"status": "OK"})) }.boxed()),
    ]
}

/// Per API, the configured instances: ids and types only, never a config (it may hold keys).
fn list_providers(stack: &Arc<Stack>) -> Result<Reply> {
    let out: IndexMap<&str, Vec<ProviderInfo>> = stack
        .config
        .providers
        .iter()
        .map(|(api, ps)| {
            let infos = ps
                .iter()
                .map(|p| ProviderInfo { provider_id: p.provider_id.clone(), provider_type: p.provider_type.clone() })
                .collect();
            (api.as_str(), infos)
        })
        .collect();
    Reply::json(&out)
}

/// Per API (all nine, served or not, as upstream), its routes with lowercase methods and the
/// provider types configured for that API.
fn list_routes(stack: &Arc<Stack>) -> Result<Reply> {
    let mut out: IndexMap<&str, Vec<RouteInfo>> = Api::ALL.iter().map(|a| (a.as_str(), Vec::new())).collect();
    for op in all_operations() {
        let Group::Api(api) = op.group else { continue };
        let provider_types = stack.config.providers_for(api).iter().map(|p| p.provider_type.clone()).collect();
        if let Some(routes) = out.get_mut(api.as_str()) {
            routes.push(RouteInfo {
                route: op.path.to_owned(),
                method: op.method.as_str().to_ascii_lowercase(),
                provider_types,
            });
        }
    }
    Reply::json(&out)
}

//! `/memory/insert` and `/memory/query`: routed by bank id.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use super::{Args, Group, Method, Reply, ensure_served, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::memory::{InsertDocumentsRequest, QueryDocumentsRequest};

const G: Group = Group::Api(Api::Memory);

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/memory/insert", G, |s, a, c| insert(s, a, c).boxed()),
        op!(POST "/memory/query", G, |s, a, c| query(s, a, c).boxed()),
    ]
}

async fn insert(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Memory)?;
    let request: InsertDocumentsRequest = args.body()?;
    let (bank, provider) = stack.memory_banks.resolve(&request.bank_id).await?;
    provider.insert_documents(&bank, request.documents, request.ttl_seconds, &ctx).await?;
    Reply::json(&Value::Null)
}

async fn query(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Memory)?;
    let request: QueryDocumentsRequest = args.body()?;
    let (bank, provider) = stack.memory_banks.resolve(&request.bank_id).await?;
    Reply::json(&provider.query_documents(&bank, request.query, request.params, &ctx).await?)
}

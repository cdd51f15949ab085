//! `/memory/insert` and `/memory/query`: routed by bank id. Beyond the 0.0.41 API,
//! `/memory/update` (replace documents a bank holds), `/memory/documents/delete` and
//! `/memory/drop` (delete a bank with its documents), on the paths the client of the era names
//! for them.

use std::sync::Arc;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::Value;

use super::{Args, Group, Method, Reply, ensure_served, op};
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::memory::{InsertDocumentsRequest, MemoryBankDocument, QueryDocumentsRequest};

const G: Group = Group::Api(Api::Memory);
const EXTRA: Group = Group::Extension("memory");

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/memory/insert", G, |s, a, c| insert(s, a, c).boxed()),
        op!(POST "/memory/query", G, |s, a, c| query(s, a, c).boxed()),
    ]
}

/// The routes beyond the 0.0.41 API.
pub fn extensions() -> Vec<Method> {
    vec![
        op!(POST "/memory/update", EXTRA, |s, a, c| update(s, a, c).boxed()),
        op!(POST "/memory/documents/delete", EXTRA, |s, a, c| delete(s, a, c).boxed()),
        op!(POST "/memory/drop", EXTRA, |s, a, c| drop_bank(s, a, c).boxed()),
    ]
}

#[derive(Debug, Deserialize)]
struct UpdateDocumentsRequest {
    bank_id: String,
    documents: Vec<MemoryBankDocument>,
}

#[derive(Debug, Deserialize)]
struct DropBankRequest {
    bank_id: String,
}

#[derive(Debug, Deserialize)]
struct DeleteDocumentsRequest {
    bank_id: String,
    document_ids: Vec<String>,
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

async fn update(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Memory)?;
    let request: UpdateDocumentsRequest = args.body()?;
    let (bank, provider) = stack.memory_banks.resolve(&request.bank_id).await?;
    provider.update_documents(&bank, request.documents, &ctx).await?;
    Reply::json(&Value::Null)
}

async fn delete(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Memory)?;
    let request: DeleteDocumentsRequest = args.body()?;
    let (bank, provider) = stack.memory_banks.resolve(&request.bank_id).await?;
    provider.delete_documents(&bank, request.document_ids, &ctx).await?;
    Reply::json(&Value::Null)
}

/// Deletes a bank with its documents, then its registration; answers the bank id, as the
/// client of the era expects.
async fn drop_bank(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    ensure_served(&stack, Api::Memory)?;
    let request: DropBankRequest = args.body()?;
    let (bank, provider) = stack.memory_banks.resolve(&request.bank_id).await?;
    provider.drop_memory_bank(&bank, &ctx).await?;
    stack.memory_banks.unregister(&request.bank_id).await?;
    Reply::json(&Value::String(request.bank_id))
}

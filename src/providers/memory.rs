//! The memory provider interface: banks a provider keeps, and document insert/query.

use async_trait::async_trait;

use super::RequestContext;
use crate::error::{Error, Result};
use crate::types::common::{InterleavedTextMedia, JsonObject};
use crate::types::memory::{MemoryBankDocument, QueryDocumentsResponse};
use crate::types::memory_banks::MemoryBankDef;

#[async_trait]
pub trait MemoryProvider: Send + Sync {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>>;
    /// Creates the bank's storage; may refuse a bank type the provider cannot hold.
    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()>;
    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ttl_seconds: Option<i64>,
        ctx: &RequestContext,
    ) -> Result<()>;
    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse>;
    /// Replaces documents that are already in the bank; an id the bank does not hold is an error
    /// and nothing changes.
    async fn update_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let _ = (documents, ctx);
        Err(Error::not_implemented(format!(
            "the provider of memory bank `{}` cannot update documents",
            bank.identifier()
        )))
    }
    /// Removes documents by id; ids the bank does not hold are ignored.
    async fn delete_documents(
        &self,
        bank: &MemoryBankDef,
        document_ids: Vec<String>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let _ = (document_ids, ctx);
        Err(Error::not_implemented(format!(
            "the provider of memory bank `{}` cannot delete documents",
            bank.identifier()
        )))
    }
    /// Deletes the bank's storage and every document in it; the caller then removes its
    /// registration. A bank whose storage is already gone is not an error.
    async fn drop_memory_bank(&self, bank: &MemoryBankDef, ctx: &RequestContext) -> Result<()> {
        let _ = ctx;
        Err(Error::not_implemented(format!("the provider of memory bank `{}` cannot drop banks", bank.identifier())))
    }
    async fn shutdown(&self) {}
}

//! The memory provider interface: banks a provider keeps, and document insert/query.

use async_trait::async_trait;

use super::RequestContext;
use crate::error::Result;
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
    async fn shutdown(&self) {}
}

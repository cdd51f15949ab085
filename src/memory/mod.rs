//! Memory banks and the documents in them: reading documents (text, HTML, PDF, `data:` and
//! `http(s)` URLs), cutting them into token chunks, embedding, storing and searching them.
//!
//! `meta-reference` ([`MetaReferenceMemory`]) is the inline provider: everything it holds lives
//! in a kv store, with an index per bank in memory. Vector banks rank by cosine similarity of
//! their `embedding_model`'s vectors, keyword banks by BM25, keyvalue banks answer the document
//! whose id is the query. Graph banks are refused with a 501 that says so.
//!
//! The remote providers keep vector banks elsewhere and share the inline provider's reading,
//! chunking and embedding: `remote::pgvector` in `PostgreSQL`, `remote::chromadb` in a Chroma
//! server, `remote::weaviate` in the Weaviate cluster each request names (`remote.rs` holds what
//! the two HTTP ones share).

mod ann;
mod chroma;
mod chunk;
mod config;
mod embedder;
mod fetch;
mod index;
mod ingest;
mod pgvector;
mod provider;
mod remote;
mod weaviate;

use futures::FutureExt;
use futures::future::BoxFuture;

pub use chroma::{ChromaConfig, ChromaMemory, collection_name as chroma_collection_name};
pub use chunk::{TextChunk, chunk_text, load_tokenizer};
pub use config::MetaReferenceMemoryConfig;
pub use fetch::{FetchLimits, Fetched, is_public, read_url};
pub use index::{BankIndex, Hit, StoredChunk, StoredDocument};
pub use pgvector::{PgVectorConfig, PgVectorMemory, table_name as pgvector_table_name};
pub use provider::{DEFAULT_MAX_CHUNKS, MetaReferenceMemory, QueryParams};
pub use weaviate::{WeaviateConfig, WeaviateMemory, class_name as weaviate_class_name};

use crate::error::Result;
use crate::providers::ProviderImpl;
use crate::providers::registry::BuildArgs;

/// The `meta-reference` memory provider's build function for the provider registry.
pub fn build_meta_reference(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    async move {
        let p = MetaReferenceMemory::build(args).await?;
        Ok(ProviderImpl::Memory(p))
    }
    .boxed()
}

/// The `remote::pgvector` memory provider's build function for the provider registry.
pub fn build_pgvector(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    async move {
        let p = PgVectorMemory::build(args).await?;
        Ok(ProviderImpl::Memory(p))
    }
    .boxed()
}

/// The `remote::chromadb` memory provider's build function for the provider registry.
pub fn build_chroma(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    async move {
        let p = ChromaMemory::build(args).await?;
        Ok(ProviderImpl::Memory(p))
    }
    .boxed()
}

/// The `remote::weaviate` memory provider's build function for the provider registry.
pub fn build_weaviate(args: BuildArgs) -> BoxFuture<'static, Result<ProviderImpl>> {
    async move {
        let p = WeaviateMemory::build(args).await?;
        Ok(ProviderImpl::Memory(p))
    }
    .boxed()
}

#[cfg(test)]
mod tests;

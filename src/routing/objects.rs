//! The three routed object kinds and how each provider API serves them.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ObjectSource, Routable, RoutingTable};
use crate::error::Result;
use crate::providers::inference::InferenceProvider;
use crate::providers::memory::MemoryProvider;
use crate::providers::safety::SafetyProvider;
use crate::types::memory_banks::MemoryBankDef;
use crate::types::models::ModelDefWithProvider;
use crate::types::shields::ShieldDefWithProvider;

pub type ModelTable = RoutingTable<ModelDefWithProvider, Arc<dyn InferenceProvider>>;
pub type ShieldTable = RoutingTable<ShieldDefWithProvider, Arc<dyn SafetyProvider>>;
pub type MemoryBankTable = RoutingTable<MemoryBankDef, Arc<dyn MemoryProvider>>;

impl Routable for ModelDefWithProvider {
    const KIND: &'static str = "model";
    fn identifier(&self) -> &str {
        &self.identifier
    }
    fn provider_id(&self) -> &str {
        &self.provider_id
    }
    fn set_provider_id(&mut self, id: &str) {
        id.clone_into(&mut self.provider_id);
    }
}

impl Routable for ShieldDefWithProvider {
    const KIND: &'static str = "shield";
    fn identifier(&self) -> &str {
        &self.identifier
    }
    fn provider_id(&self) -> &str {
        &self.provider_id
    }
    fn set_provider_id(&mut self, id: &str) {
        id.clone_into(&mut self.provider_id);
    }
}

impl Routable for MemoryBankDef {
    const KIND: &'static str = "memory_bank";
    fn identifier(&self) -> &str {
        MemoryBankDef::identifier(self)
    }
    fn provider_id(&self) -> &str {
        MemoryBankDef::provider_id(self)
    }
    fn set_provider_id(&mut self, id: &str) {
        MemoryBankDef::set_provider_id(self, id);
    }
}

#[async_trait]
impl ObjectSource<ModelDefWithProvider> for Arc<dyn InferenceProvider> {
    async fn list_objects(&self, provider_id: &str) -> Result<Vec<ModelDefWithProvider>> {
        Ok(self.list_models().await?.into_iter().map(|m| m.with_provider(provider_id)).collect())
    }
    async fn register_object(&self, object: &ModelDefWithProvider) -> Result<()> {
        self.register_model(object).await
    }
}

#[async_trait]
impl ObjectSource<ShieldDefWithProvider> for Arc<dyn SafetyProvider> {
    async fn list_objects(&self, provider_id: &str) -> Result<Vec<ShieldDefWithProvider>> {
        Ok(self.list_shields().await?.into_iter().map(|s| s.with_provider(provider_id)).collect())
    }
    async fn register_object(&self, object: &ShieldDefWithProvider) -> Result<()> {
        self.register_shield(object).await
    }
}

#[async_trait]
impl ObjectSource<MemoryBankDef> for Arc<dyn MemoryProvider> {
    async fn list_objects(&self, _provider_id: &str) -> Result<Vec<MemoryBankDef>> {
        self.list_memory_banks().await
    }
    async fn register_object(&self, object: &MemoryBankDef) -> Result<()> {
        self.register_memory_bank(object).await
    }
}

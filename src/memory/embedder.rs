//! Vectors for a bank's `embedding_model`. A model some inference provider of the stack serves
//! (found in the model routing table) is asked through that provider, so a model loaded for
//! `/inference/embeddings` is not loaded twice; any other name is loaded here as a local
//! sentence-embedding model (the embedded all-MiniLM-L6-v2, fetched once into the model cache).
//! Every vector is returned with unit length, so a dot product is the cosine similarity.

use std::collections::HashMap;
use std::sync::Arc;

use crate::embed::SentenceEmbedder;
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::routing::ModelTable;
use crate::types::common::InterleavedTextMedia;

pub struct Embedders {
    models: Option<Arc<ModelTable>>,
    local: tokio::sync::Mutex<HashMap<String, Arc<SentenceEmbedder>>>,
}

impl Embedders {
    pub fn new(models: Option<Arc<ModelTable>>) -> Self {
        Self { models, local: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// Checks that `model` can embed (loading a local model now), so a bad bank is refused at
    /// registration rather than at its first insert.
    pub async fn check(&self, model: &str) -> Result<()> {
        if self.served(model).await?.is_some() {
            return Ok(());
        }
        self.local(model).await.map(|_| ())
    }

    async fn served(&self, model: &str) -> Result<Option<Arc<ModelTable>>> {
        let Some(table) = &self.models else { return Ok(None) };
        Ok(table.get(model).await?.map(|_| Arc::clone(table)))
    }

    async fn local(&self, model: &str) -> Result<Arc<SentenceEmbedder>> {
        let mut cache = self.local.lock().await;
        if let Some(e) = cache.get(model) {
            return Ok(Arc::clone(e));
        }
        let name = model.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            let dir = crate::embed::ensure_model(&name)?;
            SentenceEmbedder::load(&dir)
        })
        .await
        .map_err(|e| Error::internal(format!("loading embedding model `{model}` failed: {e}")))?
        .map_err(|e| match e {
            Error::Config(m) | Error::InvalidValue(m) => Error::invalid(format!("`embedding_model`: {m}")),
            other => other,
        })?;
        let loaded = Arc::new(loaded);
        cache.insert(model.to_owned(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// One unit vector per text, in order.
    pub async fn embed(&self, model: &str, texts: Vec<String>, ctx: &RequestContext) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(table) = self.served(model).await? {
            let (def, provider) = table.resolve(model).await?;
            let contents = texts.into_iter().map(InterleavedTextMedia::Text).collect();
            let response = provider.embeddings(&def, contents, ctx).await?;
            #[expect(clippy::cast_possible_truncation, reason = "vectors are kept as f32")]
            let vectors = response
                .embeddings
                .into_iter()
                .map(|v| normalized(v.into_iter().map(|x| x as f32).collect()))
                .collect();
            return Ok(vectors);
        }
        let embedder = self.local(model).await?;
        let vectors = tokio::task::spawn_blocking(move || embedder.embed(&texts))
            .await
            .map_err(|e| Error::internal(format!("embedding failed: {e}")))??;
        Ok(vectors.into_iter().map(normalized).collect())
    }
}

/// `v` scaled to unit length; a zero vector stays zero (it then scores 0 against everything).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

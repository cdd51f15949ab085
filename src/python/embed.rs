//! Bridge for sentence embeddings computed by the core: lets Python check the core's vectors
//! against other implementations and time them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

use super::errors::to_py;
use crate::embed::SentenceEmbedder;

/// Models already loaded, by folder, kept for the life of the process so repeated calls pay
/// the load once.
static LOADED: Mutex<Option<HashMap<PathBuf, Arc<SentenceEmbedder>>>> = Mutex::new(None);

fn loaded(dir: PathBuf) -> crate::Result<Arc<SentenceEmbedder>> {
    if let Some(model) = LOADED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|m| m.get(&dir)) {
        return Ok(Arc::clone(model));
    }
    // Loaded outside the lock: two first calls may both load, and the later one is kept.
    let model = Arc::new(SentenceEmbedder::load(&dir)?);
    let mut cache = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    cache.get_or_insert_with(HashMap::new).insert(dir, Arc::clone(&model));
    Ok(model)
}

/// Embeds `texts` with the model in `model_dir`: one unit-length vector per text, in order.
/// The model is loaded on the first call for that folder. Runs with the GIL released.
#[pyfunction]
pub fn embed_sentences(py: Python<'_>, model_dir: &str, texts: Vec<String>) -> PyResult<Vec<Vec<f32>>> {
    let dir = PathBuf::from(model_dir);
    py.detach(move || loaded(dir)?.embed(&texts)).map_err(to_py)
}

//! Finding an embedding model on disk: a known id comes from the model cache (fetched, and its
//! files checked, by `crate::model_cache`); any other id must already be there.

use std::path::{Path, PathBuf};

use super::settings::REQUIRED_FILES;
use crate::model_cache::{ALL_MINILM_L6_V2, Fetcher, PackagedModel};
use crate::{Error, Result};

/// The embedding models the cache can fetch.
const KNOWN_MODELS: &[&PackagedModel] = &[&ALL_MINILM_L6_V2];

/// The folder holding `model_id` (`$LLAMA_STACK_CONFIG_DIR/checkpoints/<id>`), fetched first if it
/// is missing. A `sentence-transformers/` prefix on the id is accepted and dropped.
pub fn ensure_model(model_id: &str) -> Result<PathBuf> {
    ensure_model_in(&crate::config::config_dir(), model_id)
}

/// `ensure_model` with `base` standing for the config folder (`<base>/checkpoints/<id>`).
pub fn ensure_model_in(base: &Path, model_id: &str) -> Result<PathBuf> {
    let name = folder_name(model_id)?;
    let checkpoints = base.join("checkpoints");
    if let Some(model) = KNOWN_MODELS.iter().find(|m| m.id == name) {
        return Fetcher::default().ensure(model, &checkpoints);
    }
    let target = checkpoints.join(name);
    if REQUIRED_FILES.iter().all(|f| target.join(f).is_file()) {
        return Ok(target);
    }
    Err(Error::config(format!(
        "embedding model `{model_id}` is not in `{}` and there is no known download for it (known: {}); put its {} there",
        target.display(),
        KNOWN_MODELS.iter().map(|m| format!("`{}`", m.id)).collect::<Vec<_>>().join(", "),
        REQUIRED_FILES.join(", ")
    )))
}

/// Whether `model_id` is an embedding model the cache can fetch.
pub fn is_known(model_id: &str) -> bool {
    folder_name(model_id).is_ok_and(|name| KNOWN_MODELS.iter().any(|m| m.id == name))
}

/// The id as a single folder name; anything that could leave `checkpoints/` is refused.
fn folder_name(model_id: &str) -> Result<&str> {
    let name = model_id.strip_prefix("sentence-transformers/").unwrap_or(model_id);
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(format!("embedding model id `{model_id}` must be a plain name such as `all-MiniLM-L6-v2`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_plain_folder_names() -> Result<()> {
        assert_eq!(folder_name("all-MiniLM-L6-v2")?, "all-MiniLM-L6-v2");
        assert_eq!(folder_name("sentence-transformers/all-MiniLM-L6-v2")?, "all-MiniLM-L6-v2");
        for bad in ["", "../x", "a/b", ".hidden", "sentence-transformers/"] {
            assert!(matches!(folder_name(bad), Err(Error::InvalidValue(_))), "{bad:?} accepted");
        }
        Ok(())
    }

    #[test]
    fn known_models_are_the_packaged_embedding_models() {
        assert!(is_known("all-MiniLM-L6-v2") && is_known("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(!is_known("SmolLM2-135M-Instruct"));
        assert!(KNOWN_MODELS.iter().all(|m| crate::model_cache::packaged(m.id).is_some()));
    }
}

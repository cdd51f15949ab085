//! The generation models of the model cache: a known id (fetched and checked by
//! `crate::model_cache`), or the path of any GGUF file.

use std::path::{Path, PathBuf};

use crate::config as paths;
use crate::error::{Error, Result};
use crate::model_cache::Fetcher;
pub use crate::model_cache::{PackagedModel as KnownModel, SMOLLM2_135M, checkpoints_dir};

const KNOWN: &[&KnownModel] = &[&SMOLLM2_135M];

/// The known model with this id.
pub fn known(id: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().copied().find(|m| m.id == id)
}

/// Ids of the models the cache can fetch.
pub fn known_ids() -> Vec<&'static str> {
    KNOWN.iter().map(|m| m.id).collect()
}

/// The GGUF file's name (a known generation model is that one file).
pub fn file_name(model: &KnownModel) -> &'static str {
    model.files.first().map_or("", |f| f.path)
}

/// Where the file lives under a checkpoints folder.
pub fn path_in(model: &KnownModel, checkpoints: &Path) -> PathBuf {
    checkpoints.join(model.id).join(file_name(model))
}

/// A generation model named in a config: its id (what `list_models` reports) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub id: String,
    pub path: PathBuf,
}

/// Reads the `model` field: a known id, or a path to a `.gguf` file. A path to the file of a
/// known model keeps that model's id; any other file is known by its file stem.
pub fn resolve(model: &str, at: &str) -> Result<ModelFile> {
    let model = model.trim();
    if let Some(k) = known(model) {
        return Ok(ModelFile { id: k.id.to_owned(), path: path_in(k, &checkpoints_dir()) });
    }
    let is_gguf = Path::new(model).extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let looks_like_path = is_gguf || model.contains('/') || model.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_path {
        return Err(Error::config(format!(
            "`{at}.model`: unknown model `{model}`; use one of {} or the path of a .gguf file",
            known_ids().iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    let path = paths::expand_home(model);
    if !path.is_file() {
        return Err(Error::config(format!("`{at}.model`: no GGUF file at `{}`", path.display())));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id = KNOWN
        .iter()
        .find(|k| file_name(k) == name)
        .map_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned(), |k| k.id.to_owned());
    Ok(ModelFile { id, path })
}

/// The cached file of a known model under `<config dir>/checkpoints`, fetched first if missing.
/// Blocks (runs pip); call it off the async runtime.
pub fn ensure_model(id: &str) -> Result<PathBuf> {
    ensure_model_in(&checkpoints_dir(), id)
}

/// Like [`ensure_model`] with another checkpoints folder. Every file is checked against its
/// pinned checksum; a missing or damaged one is fetched again.
pub fn ensure_model_in(checkpoints: &Path, id: &str) -> Result<PathBuf> {
    let model = known(id).ok_or_else(|| {
        Error::invalid(format!(
            "unknown model `{id}`; the models that can be downloaded are {}",
            known_ids().iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    Fetcher::default().ensure(model, checkpoints)?;
    Ok(path_in(model, checkpoints))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_follow_the_config_dir_layout() {
        let root = Path::new("/data/llama/checkpoints");
        assert_eq!(
            path_in(&SMOLLM2_135M, root),
            Path::new("/data/llama/checkpoints/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(known("SmolLM2-135M-Instruct").map(file_name), Some("SmolLM2-135M-Instruct.Q4_1.gguf"));
        assert!(known("Llama3.1-8B-Instruct").is_none());
    }

    #[test]
    fn model_field_is_an_id_or_a_gguf_path() {
        let dir = tempfile::tempdir().unwrap();
        let known_file = dir.path().join(file_name(&SMOLLM2_135M));
        std::fs::write(&known_file, b"x").unwrap();
        let other = dir.path().join("tiny-model.Q8_0.gguf");
        std::fs::write(&other, b"x").unwrap();

        let got = resolve(known_file.to_str().unwrap(), "p.config").unwrap();
        assert_eq!(got, ModelFile { id: "SmolLM2-135M-Instruct".into(), path: known_file });
        let got = resolve(other.to_str().unwrap(), "p.config").unwrap();
        assert_eq!(got.id, "tiny-model.Q8_0");
        let by_id = resolve("SmolLM2-135M-Instruct", "p.config").unwrap();
        assert!(by_id.path.ends_with("checkpoints/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));

        let e = resolve("Llama3.1-8B-Instruct", "p.config").unwrap_err().to_string();
        assert!(e.contains("p.config.model") && e.contains("SmolLM2-135M-Instruct"), "{e}");
        let missing = dir.path().join("absent.gguf");
        let e = resolve(missing.to_str().unwrap(), "p.config").unwrap_err().to_string();
        assert!(e.contains("no GGUF file") && e.contains("absent.gguf"), "{e}");
    }

    #[test]
    fn unknown_ids_are_refused_before_any_download() {
        let dir = tempfile::tempdir().unwrap();
        let e = ensure_model_in(dir.path(), "no-such-model").unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("SmolLM2-135M-Instruct"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

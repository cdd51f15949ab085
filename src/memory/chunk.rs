//! Cutting a document into chunks of Llama 3 tokens, as upstream does: windows of
//! `chunk_size` tokens starting every `chunk_size - overlap` tokens (the last ones may be
//! shorter), each decoded back to text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::prompt::Llama3Tokenizer;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    pub content: String,
    pub token_count: usize,
}

/// The overlap upstream uses when a bank gives none: a quarter of the chunk.
pub fn default_overlap(chunk_size: usize) -> usize {
    chunk_size / 4
}

pub fn chunk_text(tokenizer: &Llama3Tokenizer, text: &str, chunk_size: usize, overlap: usize) -> Vec<TextChunk> {
    let tokens = tokenizer.encode(text, false);
    let step = chunk_size.saturating_sub(overlap).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let window = &tokens[start..(start + chunk_size).min(tokens.len())];
        out.push(TextChunk { content: tokenizer.decode(window), token_count: window.len() });
        start += step;
    }
    out
}

/// The Llama 3 tokenizer at `path`, else the `tokenizer.model` shipped in the installed
/// `llama_models` package (found with `$LLAMA_STACK_PYTHON`, else `python3`). Loaded once per
/// process and path.
pub fn load_tokenizer(path: Option<&str>) -> Result<Arc<Llama3Tokenizer>> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Arc<Llama3Tokenizer>>>> = Mutex::new(None);
    let path = match path {
        Some(p) => crate::config::expand_home(p),
        None => installed_tokenizer()?,
    };
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = cache.as_ref().and_then(|c| c.get(&path)) {
        return Ok(Arc::clone(t));
    }
    let t = Arc::new(Llama3Tokenizer::from_file(&path)?);
    cache.get_or_insert_with(HashMap::new).insert(path, Arc::clone(&t));
    Ok(t)
}

fn installed_tokenizer() -> Result<PathBuf> {
    let python =
        std::env::var("LLAMA_STACK_PYTHON").ok().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "python3".into());
    let script =
        "import os, llama_models.llama3.api as m; print(os.path.join(os.path.dirname(m.__file__), 'tokenizer.model'))";
    let hint = "set `tokenizer` in the memory provider's config to a Llama 3 tokenizer.model, or install llama-models";
    let out = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::config(format!("cannot run `{python}` to find the Llama 3 tokenizer ({e}); {hint}")))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !Path::new(&path).is_file() {
        return Err(Error::config(format!("`{python}` has no llama_models tokenizer; {hint}")));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real tokenizer when the machine has one (CI installs llama-models); skipped otherwise.
    pub fn tokenizer() -> Option<Arc<Llama3Tokenizer>> {
        load_tokenizer(None).ok()
    }

    #[test]
    fn windows_overlap_and_cover_the_text() {
        let Some(t) = tokenizer() else { return };
        let text = (0..100).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
        let n = t.encode(&text, false).len();
        let chunks = chunk_text(&t, &text, 32, 8);
        assert_eq!(chunks.len(), n.div_ceil(24));
        assert!(chunks.iter().all(|c| c.token_count <= 32));
        assert_eq!(chunks[0].token_count, 32);
        assert!(chunks[0].content.starts_with("word0 word1"));
        assert!(chunks.last().unwrap().content.ends_with("word99"));
        assert!(chunk_text(&t, "", 32, 8).is_empty());
        assert_eq!(default_overlap(512), 128);
    }
}

//! Reading a sentence-transformers model folder: the BERT config, the sequence limit and the
//! pooling mode, each from the file sentence-transformers keeps it in.

use std::path::{Path, PathBuf};

use candle_transformers::models::bert::Config as BertConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::pooling::Pooling;
use crate::{Error, Result};

/// The files a model folder must hold.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// What `load` needs besides the weights and the tokenizer.
#[derive(Debug)]
pub struct ModelSettings {
    pub bert: BertConfig,
    /// Longest input in tokens, special tokens included; longer inputs are cut.
    pub max_tokens: usize,
    pub pooling: Pooling,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[expect(clippy::struct_excessive_bools, reason = "mirrors the flags of the pooling config file")]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl ModelSettings {
    pub fn read(dir: &Path) -> Result<Self> {
        for name in REQUIRED_FILES {
            if !dir.join(name).is_file() {
                return Err(Error::config(format!(
                    "embedding model folder `{}` has no `{name}` (it needs {})",
                    dir.display(),
                    REQUIRED_FILES.join(", ")
                )));
            }
        }
        let bert: BertConfig = read_json(&dir.join("config.json"))?;
        if let Some(kind) = bert.model_type.as_deref().filter(|k| *k != "bert") {
            return Err(Error::config(format!(
                "`{}`: model_type `{kind}` is not supported; only BERT models can embed",
                dir.join("config.json").display()
            )));
        }
        // sentence-transformers cuts inputs at `max_seq_length` (256 for all-MiniLM-L6-v2), well
        // below the 512 positions BERT has; without that file the position table is the limit.
        let st_config = dir.join("sentence_bert_config.json");
        let max_tokens =
            if st_config.is_file() { read_json::<SentenceBertConfig>(&st_config)?.max_seq_length } else { None }
                .map_or(bert.max_position_embeddings, |n| n.min(bert.max_position_embeddings));
        if max_tokens < 2 {
            return Err(Error::config(format!(
                "embedding model `{}`: a sequence limit of {max_tokens} tokens leaves no room for text",
                dir.display()
            )));
        }
        let pooling = read_pooling(dir)?;
        Ok(Self { bert, max_tokens, pooling })
    }
}

/// The pooling module's folder comes from `modules.json`; a folder without either file gets
/// mean pooling, the sentence-transformers default.
fn read_pooling(dir: &Path) -> Result<Pooling> {
    let modules_file = dir.join("modules.json");
    let pooling_dir: PathBuf = if modules_file.is_file() {
        let modules: Vec<ModuleEntry> = read_json(&modules_file)?;
        match modules.iter().find(|m| m.kind.ends_with(".Pooling")) {
            Some(m) => dir.join(&m.path),
            None => return Ok(Pooling::Mean),
        }
    } else {
        dir.join("1_Pooling")
    };
    let file = pooling_dir.join("config.json");
    if !file.is_file() {
        return Ok(Pooling::Mean);
    }
    let cfg: PoolingConfig = read_json(&file)?;
    match (
        cfg.pooling_mode_mean_tokens,
        cfg.pooling_mode_cls_token,
        cfg.pooling_mode_max_tokens || cfg.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false) => Ok(Pooling::Mean),
        (false, true, false) => Ok(Pooling::Cls),
        _ => Err(Error::config(format!(
            "`{}`: only one of pooling_mode_mean_tokens or pooling_mode_cls_token may be set",
            file.display()
        ))),
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| Error::config(format!("cannot read `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT_CONFIG: &str = r#"{"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 8, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0, "model_type": "bert"}"#;

    fn folder(extra: &[(&str, &str)]) -> std::io::Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("config.json"), BERT_CONFIG)?;
        std::fs::write(dir.path().join("model.safetensors"), b"")?;
        std::fs::write(dir.path().join("tokenizer.json"), b"{}")?;
        for (name, text) in extra {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(dir)
    }

    #[test]
    fn sentence_transformers_limit_and_pooling_are_read() -> Result<()> {
        let dir = folder(&[
            ("sentence_bert_config.json", r#"{"max_seq_length": 256, "do_lower_case": false}"#),
            (
                "modules.json",
                r#"[{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
            ),
            (
                "1_Pooling/config.json",
                r#"{"word_embedding_dimension": 4, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
            ),
        ])?;
        let s = ModelSettings::read(dir.path())?;
        assert_eq!((s.max_tokens, s.pooling, s.bert.hidden_size), (256, Pooling::Cls, 4));
        Ok(())
    }

    #[test]
    fn bare_folder_uses_position_limit_and_mean() -> Result<()> {
        let dir = folder(&[])?;
        let s = ModelSettings::read(dir.path())?;
        assert_eq!((s.max_tokens, s.pooling), (512, Pooling::Mean));
        Ok(())
    }

    #[test]
    fn missing_file_and_unsupported_pooling_are_config_errors() -> Result<()> {
        let dir = folder(&[("1_Pooling/config.json", r#"{"pooling_mode_max_tokens": true}"#)])?;
        let err = ModelSettings::read(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("pooling_mode_mean_tokens"), "{err}");
        std::fs::remove_file(dir.path().join("tokenizer.json"))?;
        let err = ModelSettings::read(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("tokenizer.json"), "{err}");
        Ok(())
    }
}

//! The Prompt Guard classifier run in process: a DeBERTa-v2 sequence classifier (candle, CPU)
//! with three labels, read from a Hugging Face model folder.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::safetensors::BufferedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use candle_transformers::models::debertav2::{Config as DebertaConfig, DebertaV2SeqClassificationModel, Id2Label};
use serde_json::{Map, Value};
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// The files a model folder must hold.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// The classifier's labels, in the order of its outputs.
pub const LABELS: [&str; 3] = ["BENIGN", "INJECTION", "JAILBREAK"];

/// Class probabilities of one window of text, in the order of [`LABELS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probabilities(pub [f32; 3]);

impl Probabilities {
    /// Softmax of the three logits, in single precision as the model computes.
    pub fn from_logits(logits: [f32; 3]) -> Self {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps = logits.map(|l| (l - max).exp());
        let sum: f32 = exps.iter().sum();
        Self(exps.map(|e| e / sum))
    }

    pub fn benign(self) -> f32 {
        self.0[0]
    }

    pub fn injection(self) -> f32 {
        self.0[1]
    }

    pub fn jailbreak(self) -> f32 {
        self.0[2]
    }
}

/// A loaded Prompt Guard model. Immutable after `load`, so one instance serves many threads;
/// `classify` is CPU-bound and belongs off async executors.
pub struct Classifier {
    model: DebertaV2SeqClassificationModel,
    tokenizer: Tokenizer,
    device: Device,
    /// Longest window in tokens, special tokens included.
    window: usize,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Classifier>();
};

/// The files of `REQUIRED_FILES` that `dir` lacks (all of them when `dir` is not a folder).
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    REQUIRED_FILES.into_iter().filter(|f| !dir.join(f).is_file()).collect()
}

impl Classifier {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`. Tensors of the
    /// file that the model does not use are logged.
    pub fn load(dir: &Path) -> Result<Self> {
        let (classifier, unused) = Self::load_reporting_unused(dir)?;
        if !unused.is_empty() {
            tracing::warn!(
                "Prompt Guard weights `{}`: {} tensors are not used by the model: {}",
                dir.join("model.safetensors").display(),
                unused.len(),
                unused.join(", ")
            );
        }
        Ok(classifier)
    }

    /// `load`, also returning the names of the tensors in the weights file the model left unread.
    pub fn load_reporting_unused(dir: &Path) -> Result<(Self, Vec<String>)> {
        let missing = missing_files(dir);
        if !missing.is_empty() {
            return Err(Error::config(format!(
                "Prompt Guard model folder `{}` lacks {} (it needs {})",
                dir.display(),
                missing.join(", "),
                REQUIRED_FILES.join(", ")
            )));
        }
        let config_path = dir.join("config.json");
        let (config, id2label) = read_config(&config_path)?;
        let window = config.max_position_embeddings;

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = load_tokenizer(&tokenizer_path, window, config.vocab_size)?;

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let weights_error = |e: &dyn std::fmt::Display| {
            Error::config(format!("cannot load Prompt Guard weights `{}`: {e}", weights_path.display()))
        };
        let buffer = fs_err::read(&weights_path)?;
        let tensors = BufferedSafetensors::new(buffer).map_err(|e| weights_error(&e))?;
        let names: BTreeSet<String> = tensors.tensors().into_iter().map(|(name, _)| name).collect();
        let used = Arc::new(Mutex::new(BTreeSet::new()));
        let backend = TrackedTensors { tensors, used: Arc::clone(&used) };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let model = DebertaV2SeqClassificationModel::load(vb.pp("deberta"), &config, id2label)
            .map_err(|e| weights_error(&e))?;
        let used = used.lock().unwrap_or_else(PoisonError::into_inner);
        let unused = names.difference(&*used).cloned().collect();
        Ok((Self { model, tokenizer, device, window }, unused))
    }

    /// Longest window the model reads, in tokens with the special tokens.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The token windows `text` is read in: the whole text when it fits the model, otherwise
    /// overlapping windows covering all of it, each with the tokenizer's special tokens.
    pub fn windows(&self, text: &str) -> Result<Vec<Encoding>> {
        let mut first = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::invalid(format!("cannot tokenize the message: {e}")))?;
        let rest = first.take_overflowing();
        let mut out = Vec::with_capacity(1 + rest.len());
        out.push(first);
        out.extend(rest);
        Ok(out)
    }

    /// Class probabilities of every window of `text`, in order.
    pub fn classify(&self, text: &str) -> Result<Vec<Probabilities>> {
        let windows = self.windows(text)?;
        let mut out = Vec::with_capacity(windows.len());
        for window in &windows {
            if crate::native_work::stopping() {
                return Err(Error::internal("the process is stopping"));
            }
            let logits = self.logits(window.get_ids()).map_err(|e| Error::internal(format!("Prompt Guard: {e}")))?;
            out.push(Probabilities::from_logits(logits));
        }
        Ok(out)
    }

    fn logits(&self, ids: &[u32]) -> candle_core::Result<[f32; 3]> {
        if ids.is_empty() {
            // Only a tokenizer without special tokens gives nothing for an empty text.
            return Err(candle_core::Error::Msg("the tokenizer gave no tokens to classify".to_owned()));
        }
        let ids = Tensor::from_slice(ids, (1, ids.len()), &self.device)?;
        let logits = self.model.forward(&ids, None, None)?.squeeze(0)?.to_vec1::<f32>()?;
        match logits[..] {
            [a, b, c] => Ok([a, b, c]),
            _ => Err(candle_core::Error::Msg(format!("expected 3 logits, got {}", logits.len()))),
        }
    }
}

/// Reads the model config, filling in what `transformers`' `DebertaV2Config` defaults and
/// refusing what this build cannot run. Returns the config and the labels to give the model
/// when the config names none.
fn read_config(path: &Path) -> Result<(DebertaConfig, Option<Id2Label>)> {
    let bad = |msg: String| Error::config(format!("Prompt Guard model config `{}`: {msg}", path.display()));
    let text = fs_err::read_to_string(path)?;
    let mut raw: Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    if let Some(kind) = raw.get("model_type").and_then(Value::as_str) {
        if kind != "deberta-v2" {
            return Err(bad(format!("model_type `{kind}` is not supported; Prompt Guard is a `deberta-v2` model")));
        }
    }
    normalise(&mut raw);
    let config: DebertaConfig = serde_path_to_error::deserialize(Value::Object(raw))
        .map_err(|e| bad(format!("`{}`: {}", e.path(), e.inner())))?;

    if config.conv_kernel_size.unwrap_or(0) > 0 {
        return Err(bad("convolution layers (`conv_kernel_size`) are not supported".to_owned()));
    }
    if config.pooler_hidden_size != Some(config.hidden_size) {
        return Err(bad(format!(
            "`pooler_hidden_size` ({:?}) must equal `hidden_size` ({})",
            config.pooler_hidden_size, config.hidden_size
        )));
    }
    if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
        return Err(bad(format!(
            "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
            config.hidden_size, config.num_attention_heads
        )));
    }
    if config.max_position_embeddings < 3 {
        return Err(bad("`max_position_embeddings` leaves no room for text".to_owned()));
    }
    let id2label = match &config.id2label {
        Some(labels) => {
            let matches = labels.len() == 3
                && (0u32..).zip(LABELS).all(|(i, want)| labels.get(&i).is_some_and(|n| n.eq_ignore_ascii_case(want)));
            if !matches {
                let mut have: Vec<_> = labels.iter().collect();
                have.sort();
                return Err(bad(format!(
                    "`id2label` is {have:?}; a Prompt Guard classifier has the labels 0 BENIGN, 1 INJECTION, 2 JAILBREAK"
                )));
            }
            None
        }
        None => Some((0u32..).zip(LABELS.map(str::to_owned)).collect::<HashMap<_, _>>()),
    };
    Ok((config, id2label))
}

/// Fills the fields `DebertaV2Config` has defaults for and the saved config may lack, and
/// brings `pos_att_type` and `norm_rel_ebd` into the single form the model code reads.
fn normalise(raw: &mut Map<String, Value>) {
    let defaults = [
        ("hidden_act", Value::from("gelu")),
        ("hidden_dropout_prob", Value::from(0.1)),
        ("attention_probs_dropout_prob", Value::from(0.1)),
        ("max_position_embeddings", Value::from(512)),
        ("type_vocab_size", Value::from(0)),
        ("initializer_range", Value::from(0.02)),
        ("layer_norm_eps", Value::from(1e-7)),
        ("relative_attention", Value::from(false)),
        ("max_relative_positions", Value::from(-1)),
        ("pad_token_id", Value::from(0)),
        ("position_biased_input", Value::from(true)),
        ("pooler_dropout", Value::from(0)),
        ("pooler_hidden_act", Value::from("gelu")),
    ];
    for (key, value) in defaults {
        if raw.get(key).is_none_or(Value::is_null) {
            raw.insert(key.to_owned(), value);
        }
    }
    if raw.get("pooler_hidden_size").is_none_or(Value::is_null) {
        if let Some(hidden) = raw.get("hidden_size").cloned() {
            raw.insert("pooler_hidden_size".to_owned(), hidden);
        }
    }
    let kinds: Vec<String> = match raw.get("pos_att_type") {
        Some(Value::String(s)) => s.split('|').map(|k| k.trim().to_ascii_lowercase()).collect(),
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(|k| k.trim().to_ascii_lowercase()).collect()
        }
        _ => Vec::new(),
    };
    raw.insert("pos_att_type".to_owned(), Value::from(kinds));
    let norm = raw.get("norm_rel_ebd").and_then(Value::as_str).unwrap_or("none");
    let layer_norm = norm.split('|').any(|k| k.trim().eq_ignore_ascii_case("layer_norm"));
    raw.insert("norm_rel_ebd".to_owned(), Value::from(if layer_norm { "layer_norm" } else { "none" }));
}

/// The tokenizer, cutting texts into windows of `window` tokens (special tokens included) that
/// overlap by an eighth, so a phrase across a boundary is read whole in one of them.
fn load_tokenizer(path: &Path, window: usize, vocab_size: usize) -> Result<Tokenizer> {
    let bad = |msg: String| Error::config(format!("Prompt Guard tokenizer `{}`: {msg}", path.display()));
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
    if tokenizer.get_vocab_size(true) > vocab_size {
        return Err(bad(format!(
            "it has {} tokens, more than the model's `vocab_size` ({vocab_size})",
            tokenizer.get_vocab_size(true)
        )));
    }
    let added = tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(false));
    let content = window
        .checked_sub(added)
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(format!("{added} special tokens leave no room for text in a window of {window} tokens")))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: window,
            strategy: TruncationStrategy::LongestFirst,
            stride: content / 8,
        }))
        .map_err(|e| bad(e.to_string()))?;
    Ok(tokenizer)
}

/// The weights file, recording which tensors the model reads, with errors that name the tensor.
struct TrackedTensors {
    tensors: BufferedSafetensors,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl TrackedTensors {
    fn mark(&self, name: &str) {
        self.used.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned());
    }

    fn load(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let view = self
            .tensors
            .get(name)
            .map_err(|_| candle_core::Error::Msg(format!("the weights have no tensor `{name}`")))?;
        self.mark(name);
        candle_core::safetensors::Load::load(&view, dev)?.to_dtype(dtype)
    }
}

impl SimpleBackend for TrackedTensors {
    fn get(&self, shape: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.load(name, dtype, dev)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::Msg(format!(
                "tensor `{name}` has shape {:?}; the model config needs {:?}",
                tensor.dims(),
                shape.dims()
            )));
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.get(name).is_ok()
    }
}

//! Sentence embeddings computed in process: a BERT encoder (candle, CPU) with sentence-transformers
//! pooling, for models such as all-MiniLM-L6-v2.

mod fetch;
mod pooling;
mod settings;

use std::cmp::Reverse;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

pub use fetch::{ensure_model, ensure_model_in, is_known};
use pooling::Pooling;
use settings::ModelSettings;

use crate::{Error, Result};

/// Sentences run through the encoder together. Inputs are sorted by length first, so each batch
/// pads little; larger batches gain nothing on a CPU and cost memory on long inputs.
const BATCH_SIZE: usize = 32;

/// A loaded sentence-embedding model. Immutable after `load`, so one instance can serve many
/// threads at once; `embed` is CPU-bound and belongs off async executors.
pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    dimension: usize,
    pad_id: u32,
}

// Callers share one embedder across threads (`Arc` + `spawn_blocking`); keep that a compile-time fact.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<SentenceEmbedder>();
};

impl SentenceEmbedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`, plus the
    /// sentence-transformers files beside them when present (`sentence_bert_config.json` for the
    /// input limit, `modules.json` and the pooling config).
    pub fn load(dir: &Path) -> Result<Self> {
        let settings = ModelSettings::read(dir)?;
        let device = Device::Cpu;

        let weights_path = dir.join("model.safetensors");
        let weights = fs_err::read(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| model_error(&weights_path, &e))?;
        let model = BertModel::load(vb, &settings.bert).map_err(|e| model_error(&weights_path, &e))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| model_error(&tokenizer_path, &*e))?;
        // tokenizer.json may carry its own fixed padding and limit (128 for all-MiniLM-L6-v2);
        // padding is done here per batch, and the limit is the one the model was trained with.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: settings.max_tokens, ..TruncationParams::default() }))
            .map_err(|e| model_error(&tokenizer_path, &*e))?;

        let pad_id = u32::try_from(settings.bert.pad_token_id).map_err(|_| {
            Error::config(format!("`{}`: pad_token_id is out of range", dir.join("config.json").display()))
        })?;
        Ok(Self { model, tokenizer, pooling: settings.pooling, dimension: settings.bert.hidden_size, pad_id })
    }

    /// Length of every vector `embed` returns.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// One unit-length vector per text, in input order. Texts longer than the model's limit are
    /// cut, as sentence-transformers does.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| Error::invalid(format!("cannot tokenize the input: {e}")))?;

        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| Reverse(encodings[i].len()));
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let vectors = self.embed_batch(&batch).map_err(|e| Error::internal(format!("embedding failed: {e}")))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Pads the batch to its longest member and runs encoder, pooling and normalisation.
    fn embed_batch(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for enc in batch {
            let pad = width - enc.len();
            ids.extend_from_slice(enc.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            mask.extend(std::iter::repeat_n(1f32, enc.len()));
            mask.extend(std::iter::repeat_n(0f32, pad));
        }
        let shape = (batch.len(), width);
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, shape, device)?;
        let mask = Tensor::from_vec(mask, shape, device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        pooling::l2_normalize(&pooling::pool(self.pooling, &hidden, &mask)?)?.to_vec2::<f32>()
    }
}

fn model_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::config(format!("cannot load embedding model file `{}`: {e}", path.display()))
}

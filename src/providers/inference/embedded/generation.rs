//! The loaded GGUF model and the generation loop. Generation runs on a blocking thread and
//! sends text through a bounded channel; the channel is also the cancel signal, so a client
//! that goes away stops the loop at the next token.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::{Semaphore, mpsc};

use super::sampling::Plan;
use crate::error::{Error, Result};
use crate::providers::inference::text::{Piece, Pieces};
use crate::types::common::{StopReason, TokenLogProbs};

/// Prompt tokens evaluated per llama.cpp call.
const BATCH: usize = 512;
/// Text pieces buffered between the generating thread and the reader.
const CHANNEL_DEPTH: usize = 16;
/// Contexts are sized in steps of this many tokens.
const CTX_STEP: usize = 256;

/// How the engine runs, from the provider's config.
#[derive(Debug, Clone, Copy)]
pub(super) struct EngineSettings {
    pub threads: usize,
    pub context_length: usize,
    pub max_concurrent: usize,
}

/// One loaded model, shared by every request of the provider.
pub(super) struct Engine {
    model: LlamaModel,
    backend: &'static LlamaBackend,
    settings: EngineSettings,
    /// Tokens a context may hold: `context_length`, capped by what the model was trained on.
    max_ctx: usize,
    /// llama.cpp may touch the model while creating a context, so creations take turns.
    create_lock: Mutex<()>,
    /// Bounds simultaneous generations; the others wait for a permit.
    slots: Arc<Semaphore>,
    provider: String,
}

static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

/// llama.cpp's process-wide state, set up once. Its log lines (many per model load) are kept
/// out of the way unless `LLAMA_STACK_LOG` asks for logs, then they go through `tracing` under
/// the target `llama-cpp-2`.
fn backend() -> Result<&'static LlamaBackend> {
    BACKEND
        .get_or_init(|| {
            let wanted = std::env::var_os("LLAMA_STACK_LOG").is_some();
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(wanted));
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start llama.cpp: {e}")))
}

/// The default thread count: one core is left for the server and the rest of the machine, as
/// llama.cpp's workers spin while waiting for each other and collapse when a core is taken away.
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1)
}

impl Engine {
    /// Loads a GGUF file. Blocks for as long as reading the weights takes.
    pub fn load(path: &Path, provider: &str, settings: EngineSettings) -> Result<Self> {
        let backend = backend()?;
        let started = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| Error::config(format!("cannot load GGUF model `{}`: {e}", path.display())))?;
        let trained = usize::try_from(model.n_ctx_train()).unwrap_or(usize::MAX).max(1);
        let max_ctx = settings.context_length.min(trained);
        tracing::info!(
            provider,
            "loaded `{}` in {:.2}s ({} threads, context {max_ctx} tokens, {} at a time)",
            path.display(),
            started.elapsed().as_secs_f64(),
            settings.threads,
            settings.max_concurrent,
        );
        Ok(Self {
            model,
            backend,
            settings,
            max_ctx,
            create_lock: Mutex::new(()),
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            provider: provider.to_owned(),
        })
    }

    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// Text to tokens. `special` reads control-token spellings (e.g. `<|im_end|>`) as those
    /// tokens, which a rendered chat template needs and raw completion text does not.
    pub fn tokenize(&self, text: &str, add_bos: bool, special: bool) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), add_bos, special)
    }

    /// The text of a vocabulary entry, control tokens included.
    pub fn token_text(&self, token: LlamaToken) -> String {
        String::from_utf8_lossy(&self.model.vocab().token_to_piece(token, true, None)).into_owned()
    }

    fn failed(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::Upstream { provider: self.provider.clone(), message: format!("llama.cpp {what} failed: {e}") }
    }

    /// Starts generating after `prompt`. Waits for a free slot first; returns the receiving end
    /// of the text channel, and dropping it stops the generation. With `special`, control
    /// tokens the model writes (e.g. Llama 3's `<|python_tag|>`) are sent as their text.
    pub async fn start(
        self: &Arc<Self>,
        prompt: Vec<LlamaToken>,
        plan: Plan,
        special: bool,
        model_id: &str,
    ) -> Result<Pieces> {
        if prompt.is_empty() {
            return Err(Error::invalid(format!("model `{model_id}`: the prompt is empty")));
        }
        if prompt.len() >= self.max_ctx {
            return Err(Error::invalid(format!(
                "model `{model_id}`: the prompt is {} tokens, and the context holds {} (context_length); shorten the messages",
                prompt.len(),
                self.max_ctx
            )));
        }
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the generation slots were closed"))?;
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let engine = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Declared first so it is released last, after the context is freed.
            let _work = crate::native_work::Work::enter();
            let _permit = permit;
            if let Err(e) = engine.generate(&prompt, &plan, special, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }

    /// A context just big enough for this request, in steps, within the limit.
    fn context_size(&self, prompt: usize, plan: &Plan) -> usize {
        let want = plan.max_tokens.map_or(self.max_ctx, |m| prompt.saturating_add(m).saturating_add(1));
        want.div_ceil(CTX_STEP).saturating_mul(CTX_STEP).min(self.max_ctx)
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "positions are below the context size, an i32 in llama.cpp"
    )]
    fn generate(
        &self,
        prompt: &[LlamaToken],
        plan: &Plan,
        special: bool,
        tx: &mpsc::Sender<Result<Piece>>,
    ) -> Result<()> {
        let n_ctx = self.context_size(prompt.len(), plan);
        let threads = i32::try_from(self.settings.threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx as u32))
            .with_n_batch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = {
            let _turn = self.create_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.model.new_context(self.backend, params).map_err(|e| self.failed("context creation", &e))?
        };
        let vocab = self.model.vocab();
        let started = Instant::now();

        let mut batch = LlamaBatch::new(BATCH, 1);
        for (c, chunk) in prompt.chunks(BATCH).enumerate() {
            if tx.is_closed() || crate::native_work::stopping() {
                return Ok(());
            }
            batch.clear();
            for (j, token) in chunk.iter().enumerate() {
                let pos = c * BATCH + j;
                batch
                    .add(*token, pos as i32, &[0], pos + 1 == prompt.len())
                    .map_err(|e| self.failed("batching", &e))?;
            }
            ctx.decode(&mut batch).map_err(|e| self.failed("prompt evaluation", &e))?;
        }
        let prompt_secs = started.elapsed().as_secs_f64();

        let seed = uuid::Uuid::new_v4().as_u128() as u32;
        let mut sampler = plan.sampler(self.model.n_vocab(), seed);
        let mut text = Utf8Pending::default();
        let mut last = batch.n_tokens() - 1;
        let mut pos = prompt.len();
        let mut produced = 0_usize;
        // Scores of tokens whose text is not out yet (a character split over tokens).
        let mut scores: Vec<TokenLogProbs> = Vec::new();
        let reason = loop {
            if plan.max_tokens.is_some_and(|m| produced >= m) || pos >= n_ctx {
                break StopReason::OutOfTokens;
            }
            let token = sampler.sample(&ctx, last);
            if vocab.is_eog(token) {
                break self.end_reason(token);
            }
            produced += 1;
            if let Some(k) = plan.logprobs {
                scores.push(self.scores(&ctx, last, token, k, special));
            }
            if let Some(piece) = text.push(&vocab.token_to_piece(token, special, None)) {
                if tx.blocking_send(Ok(piece_of(piece, &mut scores, plan))).is_err() {
                    return Ok(());
                }
            }
            if tx.is_closed() || crate::native_work::stopping() {
                return Ok(());
            }
            batch.clear();
            batch.add(token, pos as i32, &[0], true).map_err(|e| self.failed("batching", &e))?;
            ctx.decode(&mut batch).map_err(|e| self.failed("generation", &e))?;
            last = 0;
            pos += 1;
        };
        if let Some(rest) = text.finish() {
            let _ = tx.blocking_send(Ok(piece_of(rest, &mut scores, plan)));
        }
        let total = started.elapsed().as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "a rate for the log")]
        let rate = produced as f64 / (total - prompt_secs).max(1e-9);
        tracing::debug!(
            provider = %self.provider,
            "prompt {} tokens in {prompt_secs:.2}s; {produced} tokens at {rate:.1} tok/s; {reason}",
            prompt.len()
        );
        let _ = tx.blocking_send(Ok(Piece::End(reason)));
        Ok(())
    }

    /// The log probabilities of the `k` likeliest tokens at batch position `idx` (the chosen
    /// one always among them, and first), from the model's raw logits: before penalties and temperature,
    /// so they describe the model rather than the sampler.
    fn scores(&self, ctx: &LlamaContext<'_>, idx: i32, chosen: LlamaToken, k: usize, special: bool) -> TokenLogProbs {
        let logits = ctx.get_logits_ith(idx);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_total = f64::from(max) + logits.iter().map(|l| f64::from(l - max).exp()).sum::<f64>().ln();
        // The k best ids, kept sorted best first; k is at most 20, so insertion is cheap.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (id, &l) in logits.iter().enumerate() {
            if best.len() < k || best.last().is_some_and(|(b, _)| l > *b) {
                let at = best.partition_point(|(b, _)| *b >= l);
                best.insert(at, (l, id));
                best.truncate(k);
            }
        }
        let chosen_id = usize::try_from(chosen.0).unwrap_or(usize::MAX);
        if !best.iter().any(|(_, id)| *id == chosen_id) {
            if let Some(&l) = logits.get(chosen_id) {
                best.pop();
                best.push((l, chosen_id));
            }
        }
        // The chosen token goes first (under sampling it need not be the likeliest).
        if let Some(at) = best.iter().position(|(_, id)| *id == chosen_id) {
            let chosen = best.remove(at);
            best.insert(0, chosen);
        }
        let vocab = self.model.vocab();
        let logprobs_by_token = best
            .into_iter()
            .filter_map(|(l, id)| {
                let token = LlamaToken(i32::try_from(id).ok()?);
                let text = String::from_utf8_lossy(&vocab.token_to_piece(token, special, None)).into_owned();
                Some((text, f64::from(l) - log_total))
            })
            .collect();
        TokenLogProbs { logprobs_by_token }
    }

    /// Llama 3's `<|eom_id|>` ends a message that waits for a tool's answer; every other
    /// end-of-generation token ends the turn.
    fn end_reason(&self, token: LlamaToken) -> StopReason {
        if self.token_text(token) == "<|eom_id|>" { StopReason::EndOfMessage } else { StopReason::EndOfTurn }
    }
}

/// A piece of text, with the scores of the tokens it came from when they are being reported.
fn piece_of(text: String, scores: &mut Vec<TokenLogProbs>, plan: &Plan) -> Piece {
    if plan.logprobs.is_some() { Piece::Scored(text, std::mem::take(scores)) } else { Piece::Text(text) }
}

/// Bytes of generated text not yet sent: a token may end inside a UTF-8 character, whose
/// remaining bytes come with the next token.
#[derive(Debug, Default)]
struct Utf8Pending(Vec<u8>);

impl Utf8Pending {
    /// Adds a token's bytes; returns the text that is now complete, if any.
    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.0.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.0) {
                Ok(s) => {
                    out.push_str(s);
                    self.0.clear();
                    break;
                }
                Err(e) => {
                    let (valid, bad) = (e.valid_up_to(), e.error_len());
                    out.push_str(&String::from_utf8_lossy(&self.0[..valid]));
                    if let Some(n) = bad {
                        // Bytes that can never become text: replace them and read on.
                        out.push(char::REPLACEMENT_CHARACTER);
                        self.0.drain(..valid + n);
                    } else {
                        // A character cut short: keep its start for the next token.
                        self.0.drain(..valid);
                        break;
                    }
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Whatever is left when generation ends.
    fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.0);
        (!rest.is_empty()).then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_sent_in_whole_characters() {
        let mut p = Utf8Pending::default();
        let euro = "€".as_bytes();
        assert_eq!(p.push(b"price: "), Some("price: ".into()));
        assert_eq!(p.push(&euro[..1]), None);
        assert_eq!(p.push(&euro[1..]), Some("€".into()));
        assert_eq!(p.push(&[b'a', 0xff, b'b']), Some("a\u{fffd}b".into()));
        assert_eq!(p.push(&euro[..2]), None);
        assert_eq!(p.finish(), Some("\u{fffd}".into()));
        assert_eq!(p.finish(), None);
    }
}

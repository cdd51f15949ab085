//! `SamplingParams` turned into a llama.cpp sampler chain: first checked and reduced to a plain
//! plan (testable without a model), then built.

use llama_cpp_2::sampling::LlamaSampler;

use crate::error::{Error, Result};
use crate::types::common::{SamplingParams, SamplingStrategy};

/// How many recent tokens the repetition penalty looks at (llama.cpp's own default).
const PENALTY_WINDOW: i32 = 64;

/// How the next token is picked.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pick {
    /// Always the most likely token: deterministic.
    Greedy,
    /// Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`.
    TopP { temperature: f32, top_p: f32 },
    /// Sampling among the `top_k` most likely tokens.
    TopK { temperature: f32, top_k: i32 },
}

/// A checked reading of one request's sampling parameters.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub pick: Pick,
    /// `None` when no penalty applies (1.0).
    pub repetition_penalty: Option<f32>,
    /// Most tokens to generate; `None` means until the context is full.
    pub max_tokens: Option<usize>,
    /// Candidates per token whose log probabilities are reported; `None`: none are.
    pub logprobs: Option<usize>,
}

#[expect(clippy::cast_possible_truncation, reason = "sampling knobs are small numbers; f32 is what llama.cpp takes")]
fn f32_of(v: f64) -> f32 {
    v as f32
}

impl Plan {
    /// Checks `params` and says what they mean. As upstream's reference provider does, a
    /// temperature of 0 means greedy decoding whatever the strategy, so the defaults (greedy,
    /// temperature 0) give reproducible answers.
    pub fn from_params(params: &SamplingParams) -> Result<Self> {
        let bad = |field: &str, msg: String| Error::invalid(format!("`sampling_params.{field}` {msg}"));
        let temperature = params.temperature.unwrap_or(0.0);
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(bad("temperature", format!("must be 0 or more, got {temperature}")));
        }
        let top_p = params.top_p.unwrap_or(0.95);
        if !top_p.is_finite() || top_p <= 0.0 || top_p > 1.0 {
            return Err(bad("top_p", format!("must be in (0, 1], got {top_p}")));
        }
        let top_k = params.top_k.unwrap_or(0);
        if top_k < 0 {
            return Err(bad("top_k", format!("must be 0 or more, got {top_k}")));
        }
        let max_tokens = params.max_tokens.unwrap_or(0);
        let max_tokens = match usize::try_from(max_tokens) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(bad("max_tokens", format!("must be 0 (no limit) or more, got {max_tokens}"))),
        };
        let penalty = params.repetition_penalty.unwrap_or(1.0);
        if !penalty.is_finite() || penalty <= 0.0 {
            return Err(bad("repetition_penalty", format!("must be more than 0, got {penalty}")));
        }
        // 1.0 is the documented "no penalty" value.
        let repetition_penalty = ((penalty - 1.0).abs() > f64::EPSILON).then(|| f32_of(penalty));

        let pick = match params.strategy {
            SamplingStrategy::Greedy => Pick::Greedy,
            _ if temperature <= 0.0 => Pick::Greedy,
            SamplingStrategy::TopP => Pick::TopP { temperature: f32_of(temperature), top_p: f32_of(top_p) },
            SamplingStrategy::TopK => {
                let top_k = i32::try_from(top_k)
                    .ok()
                    .filter(|k| *k > 0)
                    .ok_or_else(|| bad("top_k", format!("must be at least 1 with strategy top_k, got {top_k}")))?;
                Pick::TopK { temperature: f32_of(temperature), top_k }
            }
        };
        Ok(Self { pick, repetition_penalty, max_tokens, logprobs: None })
    }

    /// The plan, also reporting the log probabilities of `top_k` candidates per token.
    pub fn with_logprobs(self, top_k: Option<usize>) -> Self {
        Self { logprobs: top_k, ..self }
    }

    /// The llama.cpp sampler chain for this plan, for a vocabulary of `n_vocab` tokens. `seed`
    /// feeds the random pick.
    pub fn sampler(&self, n_vocab: i32, seed: u32) -> LlamaSampler {
        let mut chain = Vec::with_capacity(4);
        if let Some(p) = self.repetition_penalty {
            chain.push(LlamaSampler::penalties(n_vocab, PENALTY_WINDOW, p, 0.0, 0.0));
        }
        match self.pick {
            Pick::Greedy => chain.push(LlamaSampler::greedy()),
            Pick::TopP { temperature, top_p } => {
                chain.extend([
                    LlamaSampler::top_p(top_p, 1),
                    LlamaSampler::temp(temperature),
                    LlamaSampler::dist(seed),
                ]);
            }
            Pick::TopK { temperature, top_k } => {
                chain.extend([LlamaSampler::top_k(top_k), LlamaSampler::temp(temperature), LlamaSampler::dist(seed)]);
            }
        }
        LlamaSampler::chain_simple(chain)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn params(strategy: SamplingStrategy) -> SamplingParams {
        SamplingParams { strategy, ..SamplingParams::default() }
    }

    #[test]
    fn defaults_are_greedy_without_limit() {
        let plan = Plan::from_params(&SamplingParams::default()).unwrap();
        assert_eq!(plan, Plan { pick: Pick::Greedy, repetition_penalty: None, max_tokens: None, logprobs: None });
    }

    #[test]
    fn strategies_map_to_their_samplers() {
        let mut p = params(SamplingStrategy::TopP);
        p.temperature = Some(0.7);
        p.top_p = Some(0.9);
        p.max_tokens = Some(12);
        p.repetition_penalty = Some(1.1);
        let plan = Plan::from_params(&p).unwrap();
        assert_eq!(plan.pick, Pick::TopP { temperature: 0.7, top_p: 0.9 });
        assert_eq!(plan.max_tokens, Some(12));
        assert_eq!(plan.repetition_penalty, Some(1.1));

        let mut p = params(SamplingStrategy::TopK);
        p.temperature = Some(1.0);
        p.top_k = Some(40);
        assert_eq!(Plan::from_params(&p).unwrap().pick, Pick::TopK { temperature: 1.0, top_k: 40 });

        // Temperature 0 is greedy whatever the strategy; greedy ignores the temperature.
        let p = params(SamplingStrategy::TopP);
        assert_eq!(Plan::from_params(&p).unwrap().pick, Pick::Greedy);
        let mut p = params(SamplingStrategy::Greedy);
        p.temperature = Some(1.5);
        assert_eq!(Plan::from_params(&p).unwrap().pick, Pick::Greedy);
    }

    #[test]
    fn bad_values_name_the_field() {
        type Spoil = fn(&mut SamplingParams);
        let cases: [(Spoil, &str); 6] = [
            (|p| p.temperature = Some(-0.5), "sampling_params.temperature"),
            (|p| p.top_p = Some(1.5), "sampling_params.top_p"),
            (|p| p.top_k = Some(-1), "sampling_params.top_k"),
            (|p| p.max_tokens = Some(-3), "sampling_params.max_tokens"),
            (|p| p.repetition_penalty = Some(0.0), "sampling_params.repetition_penalty"),
            (
                |p| {
                    p.strategy = SamplingStrategy::TopK;
                    p.temperature = Some(0.8);
                    p.top_k = Some(0);
                },
                "sampling_params.top_k",
            ),
        ];
        for (spoil, field) in cases {
            let mut p = SamplingParams::default();
            spoil(&mut p);
            let e = Plan::from_params(&p).unwrap_err();
            assert_eq!(e.status_code(), 400);
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}

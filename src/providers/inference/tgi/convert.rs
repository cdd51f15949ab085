//! Requests as TGI `generate` bodies (the prompt is already rendered text), and TGI's answers
//! as text, stop reason and log probabilities.

use serde_json::{Map, Value, json};

use super::wire::{Generated, Token};
use crate::providers::inference::text;
use crate::types::common::{SamplingParams, SamplingStrategy, StopReason, TokenLogProbs};
use crate::types::inference::LogProbConfig;

const EOM: &str = "<|eom_id|>";
const EOT: &str = "<|eot_id|>";
const END_OF_TEXT: &str = "<|end_of_text|>";

/// Generation stops at either end of a Llama 3 assistant message.
pub(super) const STOP_SEQUENCES: [&str; 2] = [EOM, EOT];

/// How a reply ended, when `text` is one of the tokens that end it.
pub(super) fn stop_marker(text: &str) -> Option<StopReason> {
    match text {
        EOM => Some(StopReason::EndOfMessage),
        EOT | END_OF_TEXT => Some(StopReason::EndOfTurn),
        _ => None,
    }
}

/// The stop reason: the stop token the reply ended with, else TGI's finish reason. A reason we
/// do not know is taken as running out of tokens, as upstream does.
pub(super) fn stop_reason(finish_reason: Option<&str>, marker: Option<StopReason>) -> StopReason {
    marker.unwrap_or(match finish_reason {
        Some("eos_token" | "stop_sequence" | "stop" | "eos") => StopReason::EndOfTurn,
        _ => StopReason::OutOfTokens,
    })
}

/// `text` without the stop tokens it ends with, and the stop reason the first of them gives.
pub(super) fn strip_stop(mut text: String) -> (String, Option<StopReason>) {
    let mut marker = None;
    loop {
        let found = [EOM, EOT, END_OF_TEXT].into_iter().find(|m| text.ends_with(m));
        let Some(m) = found else { break };
        text.truncate(text.len() - m.len());
        marker = stop_marker(m);
    }
    (text, marker)
}

/// How many new tokens to ask for. With the server's total (prompt and reply) and the prompt's
/// length known, the reply gets what is left, less one (TGI adds its own begin-of-text token),
/// or the caller's `max_tokens` when that is smaller. Without them the caller's limit is sent as
/// it is, or none, and the server applies its own. `Err` when the prompt leaves no room.
pub(super) fn max_new_tokens(
    requested: Option<i64>,
    max_total: Option<u64>,
    prompt_tokens: Option<u64>,
) -> Result<Option<u64>, String> {
    let requested = requested.and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
    match (max_total, prompt_tokens) {
        (Some(total), Some(prompt)) => {
            let room = total.checked_sub(prompt + 1).filter(|r| *r > 0).ok_or_else(|| {
                format!(
                    "the prompt is {prompt} tokens and the model takes at most {total} tokens of prompt and reply together"
                )
            })?;
            Ok(Some(requested.unwrap_or(room).min(room)))
        }
        (Some(total), None) => Ok(requested.map(|n| n.min(total.saturating_sub(1).max(1)))),
        (None, _) => Ok(requested),
    }
}

/// The `top_n_tokens` to ask for: TGI reports the most likely tokens only when asked for more
/// than the sampled one.
pub(super) fn top_n_tokens(logprobs: Option<&LogProbConfig>) -> crate::error::Result<Option<usize>> {
    Ok(text::logprobs_top_k(logprobs)?.filter(|k| *k > 1))
}

/// Adds the sampling parameters. A positive temperature samples whatever the strategy (clients
/// set one without naming a strategy, and the reference implementation samples whenever the
/// temperature is not 0); `top_p` and `top_k` apply under their own strategy. Greedy decoding is
/// `do_sample: false` with no temperature, since TGI refuses a temperature of 0.
fn add_sampling(params: &mut Map<String, Value>, p: &SamplingParams) {
    let mut sample = false;
    if let Some(t) = p.temperature.filter(|t| *t > 0.0) {
        params.insert("temperature".into(), json!(t));
        sample = true;
    }
    match p.strategy {
        SamplingStrategy::TopP => {
            // TGI takes 0 < top_p < 1; 1 keeps every token, which is what leaving it out does.
            if let Some(v) = p.top_p.filter(|v| *v > 0.0 && *v < 1.0) {
                params.insert("top_p".into(), json!(v));
            }
            sample = true;
        }
        SamplingStrategy::TopK => {
            if let Some(k) = p.top_k.filter(|k| *k > 0) {
                params.insert("top_k".into(), json!(k));
            }
            sample = true;
        }
        SamplingStrategy::Greedy => {}
    }
    if let Some(r) = p.repetition_penalty.filter(|r| *r > 0.0 && (*r - 1.0).abs() > f64::EPSILON) {
        params.insert("repetition_penalty".into(), json!(r));
    }
    params.insert("do_sample".into(), json!(sample));
}

/// A `generate` body. `stream` is set only for servers that pick streaming from the body (the
/// serverless Inference API); TGI's own routes say it by their path.
pub(super) fn body(
    prompt: &str,
    sampling: &SamplingParams,
    max_new_tokens: Option<u64>,
    top_n_tokens: Option<usize>,
    stream: Option<bool>,
) -> Value {
    let mut params = Map::new();
    if let Some(n) = max_new_tokens {
        params.insert("max_new_tokens".into(), json!(n));
    }
    params.insert("stop".into(), json!(STOP_SEQUENCES));
    params.insert("details".into(), json!(true));
    params.insert("decoder_input_details".into(), json!(false));
    params.insert("return_full_text".into(), json!(false));
    if let Some(n) = top_n_tokens {
        params.insert("top_n_tokens".into(), json!(n));
    }
    add_sampling(&mut params, sampling);
    let mut body = Map::new();
    body.insert("inputs".into(), json!(prompt));
    body.insert("parameters".into(), Value::Object(params));
    if let Some(s) = stream {
        body.insert("stream".into(), json!(s));
    }
    Value::Object(body)
}

/// The log probability of one generated token, with the most likely alternatives when TGI sent
/// them; `None` for a token it gave no probability for.
pub(super) fn token_logprobs(token: &Token, top: Option<&[Token]>) -> Option<TokenLogProbs> {
    let mut by_token = indexmap::IndexMap::new();
    by_token.insert(token.text.clone(), token.logprob?);
    for alt in top.unwrap_or_default() {
        if let Some(lp) = alt.logprob {
            by_token.entry(alt.text.clone()).or_insert(lp);
        }
    }
    Some(TokenLogProbs { logprobs_by_token: by_token })
}

/// Reads a `/generate` answer. The text is put together from the tokens, as they keep special
/// tokens such as `<|python_tag|>` that TGI leaves out of `generated_text`; the stop token it
/// ends with gives the stop reason and is cut off. Log probabilities are those of the text's
/// tokens (a stop token is not text, as in a stream), present when asked for and given.
pub(super) fn reply(answer: Generated, with_logprobs: bool) -> text::Generated {
    let details = answer.details.unwrap_or_default();
    let text = if details.tokens.is_empty() {
        answer.generated_text
    } else {
        details.tokens.iter().map(|t| t.text.as_str()).collect()
    };
    let (text, marker) = strip_stop(text);
    let logprobs: Vec<TokenLogProbs> = if with_logprobs {
        details
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| stop_marker(&t.text).is_none())
            .filter_map(|(i, t)| token_logprobs(t, details.top_tokens.get(i).map(Vec::as_slice)))
            .collect()
    } else {
        Vec::new()
    };
    text::Generated {
        text,
        stop_reason: stop_reason(details.finish_reason.as_deref(), marker),
        logprobs: (!logprobs.is_empty()).then_some(logprobs),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::providers::inference::tgi::wire::GenerateAnswer;

    fn sampling(v: Value) -> SamplingParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn greedy_and_sampled_parameters() {
        let b = body("<|begin_of_text|>hi", &sampling(json!({})), Some(10), None, None);
        assert_eq!(
            b,
            json!({"inputs": "<|begin_of_text|>hi", "parameters": {
                "max_new_tokens": 10, "stop": ["<|eom_id|>", "<|eot_id|>"], "details": true,
                "decoder_input_details": false, "return_full_text": false, "do_sample": false}})
        );
        let p = sampling(json!({"strategy": "top_p", "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}));
        let b = body("x", &p, None, Some(3), Some(true));
        let params = &b["parameters"];
        assert_eq!((params["temperature"].clone(), params["top_p"].clone()), (json!(0.7), json!(0.9)));
        assert_eq!((params["do_sample"].clone(), params["repetition_penalty"].clone()), (json!(true), json!(1.1)));
        assert_eq!((params["top_n_tokens"].clone(), b["stream"].clone()), (json!(3), json!(true)));
        assert!(params.get("max_new_tokens").is_none() && params.get("top_k").is_none());
        let b = body("x", &sampling(json!({"strategy": "top_k", "top_k": 5, "top_p": 1.0})), None, None, None);
        assert_eq!(b["parameters"]["top_k"], 5);
        assert!(b["parameters"].get("temperature").is_none() && b["parameters"].get("top_p").is_none());
        // A temperature without a strategy still samples.
        assert_eq!(
            body("x", &sampling(json!({"temperature": 0.5})), None, None, None)["parameters"]["do_sample"],
            true
        );
    }

    #[test]
    fn new_tokens_fit_the_server_total() {
        assert_eq!(max_new_tokens(None, Some(4096), Some(96)), Ok(Some(3999)));
        assert_eq!(max_new_tokens(Some(100), Some(4096), Some(96)), Ok(Some(100)));
        assert_eq!(max_new_tokens(Some(5000), Some(4096), Some(96)), Ok(Some(3999)));
        assert!(max_new_tokens(Some(10), Some(100), Some(99)).unwrap_err().contains("99 tokens"));
        assert!(max_new_tokens(None, Some(100), Some(150)).is_err());
        assert_eq!(max_new_tokens(Some(5000), Some(4096), None), Ok(Some(4095)));
        assert_eq!(max_new_tokens(None, Some(4096), None), Ok(None));
        assert_eq!(max_new_tokens(Some(0), None, Some(3)), Ok(None));
        assert_eq!(max_new_tokens(Some(-1), None, None), Ok(None));
        assert_eq!(max_new_tokens(Some(7), None, None), Ok(Some(7)));
        assert_eq!(top_n_tokens(Some(&LogProbConfig { top_k: Some(1) })).unwrap(), None);
        assert_eq!(top_n_tokens(Some(&LogProbConfig { top_k: Some(3) })).unwrap(), Some(3));
        assert!(top_n_tokens(Some(&LogProbConfig { top_k: Some(-2) })).is_err());
    }

    #[test]
    fn stop_tokens_give_the_reason() {
        assert_eq!(strip_stop("hi<|eot_id|>".into()), ("hi".into(), Some(StopReason::EndOfTurn)));
        assert_eq!(strip_stop("call<|eom_id|>".into()), ("call".into(), Some(StopReason::EndOfMessage)));
        assert_eq!(strip_stop("a<|eom_id|>b".into()), ("a<|eom_id|>b".into(), None));
        assert_eq!(stop_reason(Some("length"), None), StopReason::OutOfTokens);
        assert_eq!(stop_reason(Some("eos_token"), None), StopReason::EndOfTurn);
        assert_eq!(stop_reason(Some("stop_sequence"), Some(StopReason::EndOfMessage)), StopReason::EndOfMessage);
        assert_eq!(stop_reason(None, None), StopReason::OutOfTokens);
    }

    fn answer(v: Value) -> Generated {
        serde_json::from_value::<GenerateAnswer>(v).unwrap().into_one().unwrap()
    }

    #[test]
    fn replies_from_tokens_or_text() {
        let tokens = json!([
            {"id": 128_010, "text": "<|python_tag|>", "logprob": -0.1, "special": true},
            {"id": 1, "text": "brave_search.call(query=\"x\")", "logprob": -0.2, "special": false},
            {"id": 128_008, "text": "<|eom_id|>", "logprob": -0.3, "special": true},
        ]);
        let a = answer(json!({"generated_text": "brave_search.call(query=\"x\")",
                              "details": {"finish_reason": "eos_token", "generated_tokens": 3, "tokens": tokens}}));
        let r = reply(a, true);
        assert_eq!(r.text, "<|python_tag|>brave_search.call(query=\"x\")");
        assert_eq!(r.stop_reason, StopReason::EndOfMessage);
        let scores = r.logprobs.unwrap();
        assert_eq!(scores.len(), 2);
        assert_eq!(json!(scores[1].logprobs_by_token), json!({"brave_search.call(query=\"x\")": -0.2}));

        let a = answer(json!([{"generated_text": "Hello there"}]));
        let r = reply(a, true);
        assert_eq!((r.text.as_str(), r.stop_reason, r.logprobs), ("Hello there", StopReason::OutOfTokens, None));

        let top = json!([[{"text": "Hi", "logprob": -0.5}, {"text": "Hey", "logprob": -1.5}]]);
        let a = answer(json!({"generated_text": "Hi", "details": {"finish_reason": "length",
            "tokens": [{"text": "Hi", "logprob": -0.5}], "top_tokens": top}}));
        let r = reply(a, true);
        assert_eq!(r.stop_reason, StopReason::OutOfTokens);
        let scores = r.logprobs.unwrap();
        let by: Vec<(&str, f64)> = scores[0].logprobs_by_token.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(by, [("Hi", -0.5), ("Hey", -1.5)]);
    }
}

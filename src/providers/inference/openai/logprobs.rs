//! Log probabilities in `OpenAI`'s two shapes, turned into the API's `TokenLogProbs` (one map of
//! candidate token → log probability per generated token).

use serde_json::Value;

use crate::types::common::TokenLogProbs;

/// `/completions`' object: `top_logprobs` (one `{token: logprob}` map per token), or, when only
/// the chosen tokens are given, `tokens` with `token_logprobs`.
pub fn from_completion(value: &Value) -> Vec<TokenLogProbs> {
    let as_map = |v: &Value| -> Option<TokenLogProbs> {
        let map = v.as_object()?;
        Some(TokenLogProbs {
            logprobs_by_token: map.iter().filter_map(|(t, lp)| Some((t.clone(), lp.as_f64()?))).collect(),
        })
    };
    if let Some(top) = value.get("top_logprobs").and_then(Value::as_array) {
        return top.iter().filter_map(as_map).collect();
    }
    let tokens = value.get("tokens").and_then(Value::as_array);
    let scores = value.get("token_logprobs").and_then(Value::as_array);
    match (tokens, scores) {
        (Some(tokens), Some(scores)) => {
            tokens.iter().zip(scores).filter_map(|(t, lp)| Some(single(t.as_str()?, lp.as_f64()?))).collect()
        }
        _ => Vec::new(),
    }
}

/// `/chat/completions`' object: `content` is a list of `{token, logprob, top_logprobs: [{token,
/// logprob}]}`; the candidates are used when present, else the chosen token alone.
pub fn from_chat(value: &Value) -> Vec<TokenLogProbs> {
    let Some(items) = value.get("content").and_then(Value::as_array) else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let pair = |v: &Value| Some((v.get("token")?.as_str()?.to_owned(), v.get("logprob")?.as_f64()?));
            let top: Vec<(String, f64)> = item
                .get("top_logprobs")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(pair).collect())
                .unwrap_or_default();
            if top.is_empty() {
                let (token, lp) = pair(item)?;
                return Some(single(&token, lp));
            }
            Some(TokenLogProbs { logprobs_by_token: top.into_iter().collect() })
        })
        .collect()
}

fn single(token: &str, logprob: f64) -> TokenLogProbs {
    TokenLogProbs { logprobs_by_token: [(token.to_owned(), logprob)].into_iter().collect() }
}

/// Parsed logprobs, or `None` when there are none (so the field stays null, as when not asked).
pub fn non_empty(scores: Vec<TokenLogProbs>) -> Option<Vec<TokenLogProbs>> {
    if scores.is_empty() { None } else { Some(scores) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#[allow(clippy::float_cmp, reason = "the scores are copied through, never computed")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn completion_logprobs_in_both_shapes() {
        let top = json!({"top_logprobs": [{"a": -0.1, "b": -2.0}, {"c": -0.3}]});
        let got = from_completion(&top);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].logprobs_by_token["b"], -2.0);
        let flat = json!({"tokens": ["x", "y"], "token_logprobs": [-1.0, -0.5]});
        assert_eq!(from_completion(&flat)[1].logprobs_by_token["y"], -0.5);
        assert!(from_completion(&json!(null)).is_empty());
    }

    #[test]
    fn chat_logprobs_use_the_candidates() {
        let v = json!({"content": [
            {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Hey", "logprob": -2.5}]},
            {"token": "!", "logprob": -0.7, "top_logprobs": []},
        ]});
        let got = from_chat(&v);
        assert_eq!(got[0].logprobs_by_token.len(), 2);
        assert_eq!(got[0].logprobs_by_token["Hey"], -2.5);
        assert_eq!(got[1].logprobs_by_token["!"], -0.7);
        assert!(non_empty(from_chat(&json!({"content": null}))).is_none());
    }
}

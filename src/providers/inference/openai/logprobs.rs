//! Log probabilities in `OpenAI`'s two shapes, turned into the API's `TokenLogProbs` (one map of
//! candidate token → log probability per generated token).

use serde_json::Value;

use crate::types::common::TokenLogProbs;

/// `/completions`' object: `tokens` with `token_logprobs` (the chosen tokens) and
/// `top_logprobs` (one `{token: logprob}` map of candidates per token). The chosen token goes
/// first in each map, the convention the API layer relies on.
pub fn from_completion(value: &Value) -> Vec<TokenLogProbs> {
    let list = |key: &str| value.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let (tokens, scores, top) = (list("tokens"), list("token_logprobs"), list("top_logprobs"));
    let n = tokens.len().max(top.len());
    (0..n)
        .filter_map(|i| {
            let mut map = indexmap::IndexMap::new();
            if let (Some(t), Some(lp)) = (tokens.get(i).and_then(Value::as_str), scores.get(i).and_then(Value::as_f64))
            {
                map.insert(t.to_owned(), lp);
            }
            if let Some(candidates) = top.get(i).and_then(Value::as_object) {
                for (t, lp) in candidates {
                    if let Some(lp) = lp.as_f64() {
                        map.entry(t.clone()).or_insert(lp);
                    }
                }
            }
            (!map.is_empty()).then_some(TokenLogProbs { logprobs_by_token: map })
        })
        .collect()
}

/// `/chat/completions`' object: `content` is a list of `{token, logprob, top_logprobs: [{token,
/// logprob}]}`; the chosen token goes first in each map, then the candidates.
pub fn from_chat(value: &Value) -> Vec<TokenLogProbs> {
    let Some(items) = value.get("content").and_then(Value::as_array) else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let pair = |v: &Value| Some((v.get("token")?.as_str()?.to_owned(), v.get("logprob")?.as_f64()?));
            let (token, lp) = pair(item)?;
            let mut scores = single(&token, lp);
            for (t, lp) in item.get("top_logprobs").and_then(Value::as_array).into_iter().flatten().filter_map(pair) {
                scores.logprobs_by_token.entry(t).or_insert(lp);
            }
            Some(scores)
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
        // The chosen token leads, even when it is not the likeliest candidate.
        let both = json!({"tokens": ["b"], "token_logprobs": [-2.0], "top_logprobs": [{"a": -0.1, "b": -2.0}]});
        assert_eq!(from_completion(&both)[0].logprobs_by_token.first(), Some((&"b".to_owned(), &-2.0)));
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
        assert_eq!(got[0].logprobs_by_token.first().unwrap().0, "Hi");
        assert_eq!(got[0].logprobs_by_token["Hey"], -2.5);
        assert_eq!(got[1].logprobs_by_token["!"], -0.7);
        assert!(non_empty(from_chat(&json!({"content": null}))).is_none());
    }
}

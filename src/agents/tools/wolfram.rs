//! `wolfram_alpha`: asks Wolfram Alpha's full results API for plain text pods and hands the
//! model the answer as JSON text, without the bookkeeping fields and without the pods that
//! follow the "Result" pod.

use async_trait::async_trait;
use serde_json::Value;

use super::http::{Service, get_json};
use super::{Tool, ToolContext, ToolOutput, ToolSettings, pyjson, string_arg};
use crate::error::Result;
use crate::types::common::ToolCall;

const NAME: &str = "wolfram_alpha";

/// Fields of `queryresult` the model does not need.
const DROPPED: &[&str] = &[
    "datatypes",
    "error",
    "timedout",
    "timedoutpods",
    "numpods",
    "timing",
    "parsetiming",
    "parsetimedout",
    "recalculate",
    "id",
    "host",
    "server",
    "related",
    "version",
    "assumptions",
];

/// Fields of each pod the model does not need.
const DROPPED_POD: &[&str] =
    &["scanner", "id", "error", "expressiontypes", "states", "infos", "position", "numsubpods"];

pub struct WolframAlphaTool {
    api_key: String,
    url: String,
    http: reqwest::Client,
}

impl WolframAlphaTool {
    pub fn new(api_key: String, settings: &ToolSettings) -> Self {
        Self { api_key, url: settings.wolfram_url.clone(), http: settings.http.clone() }
    }
}

#[async_trait]
impl Tool for WolframAlphaTool {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self, call: &ToolCall, _ctx: &ToolContext) -> Result<ToolOutput> {
        let query = string_arg(call, NAME, "query")?;
        let service = Service { tool: NAME, name: "Wolfram Alpha" };
        let params = [("input", query), ("appid", self.api_key.as_str()), ("format", "plaintext"), ("output", "json")];
        let answer = get_json(&self.http, &service, &self.url, &params, &[]).await?;
        Ok(ToolOutput::text(call, pyjson::dumps(&clean(answer))))
    }
}

/// The answer without bookkeeping fields; pods after the first one titled "Result" are cut.
pub fn clean(mut answer: Value) -> Value {
    let Some(result) = answer.get_mut("queryresult").and_then(Value::as_object_mut) else {
        return answer;
    };
    for key in DROPPED {
        result.shift_remove(*key);
    }
    if let Some(pods) = result.get_mut("pods").and_then(Value::as_array_mut) {
        if let Some(i) = pods.iter().position(|p| p.get("title").and_then(Value::as_str) == Some("Result")) {
            pods.truncate(i + 1);
        }
        for pod in pods.iter_mut().filter_map(Value::as_object_mut) {
            for key in DROPPED_POD {
                pod.shift_remove(*key);
            }
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drops_bookkeeping_and_pods_after_the_result() {
        let answer = json!({"queryresult": {
            "success": true, "error": false, "numpods": 3, "datatypes": "", "timedout": "", "timing": 0.5,
            "id": "x", "host": "h", "server": "1", "version": "2.6", "inputstring": "2+2",
            "assumptions": {"type": "Clash"},
            "pods": [
                {"title": "Input", "scanner": "Identity", "id": "Input", "position": 100, "error": false, "numsubpods": 1,
                 "subpods": [{"title": "", "plaintext": "2 + 2"}], "expressiontypes": {"name": "Default"}},
                {"title": "Result", "scanner": "Simplification", "id": "Result", "position": 200, "error": false,
                 "numsubpods": 1, "primary": true, "subpods": [{"title": "", "plaintext": "4"}], "states": []},
                {"title": "Number name", "subpods": [{"plaintext": "four"}]}
            ]
        }});
        assert_eq!(
            clean(answer),
            json!({"queryresult": {
                "success": true, "inputstring": "2+2",
                "pods": [
                    {"title": "Input", "subpods": [{"title": "", "plaintext": "2 + 2"}]},
                    {"title": "Result", "primary": true, "subpods": [{"title": "", "plaintext": "4"}]}
                ]
            }})
        );
        assert_eq!(clean(json!({"other": 1})), json!({"other": 1}));
    }
}

//! `brave_search`: web search through Brave's or Bing's search API. Whatever the engine, the
//! model calls the tool `brave_search` with a `query` argument and reads back a JSON text
//! `{"query": ..., "top_k": [...]}` holding the few top results, trimmed to the fields that
//! help it answer.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::http::{Service, get_json};
use super::{Tool, ToolContext, ToolOutput, ToolSettings, pyjson, string_arg};
use crate::error::Result;
use crate::types::common::ToolCall;

const NAME: &str = "brave_search";
/// How many results reach the model.
const TOP_K: usize = 3;

pub struct BraveSearchTool {
    api_key: String,
    url: String,
    http: reqwest::Client,
}

impl BraveSearchTool {
    pub fn new(api_key: String, settings: &ToolSettings) -> Self {
        Self { api_key, url: settings.brave_url.clone(), http: settings.http.clone() }
    }
}

#[async_trait]
impl Tool for BraveSearchTool {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self, call: &ToolCall, _ctx: &ToolContext) -> Result<ToolOutput> {
        let query = string_arg(call, NAME, "query")?;
        let service = Service { tool: NAME, name: "Brave Search" };
        let answer = get_json(
            &self.http,
            &service,
            &self.url,
            &[("q", query)],
            &[("X-Subscription-Token", &self.api_key), ("Accept", "application/json")],
        )
        .await?;
        Ok(ToolOutput::text(call, pyjson::dumps(&brave_summary(&answer))))
    }
}

pub struct BingSearchTool {
    api_key: String,
    url: String,
    http: reqwest::Client,
}

impl BingSearchTool {
    pub fn new(api_key: String, settings: &ToolSettings) -> Self {
        Self { api_key, url: settings.bing_url.clone(), http: settings.http.clone() }
    }
}

#[async_trait]
impl Tool for BingSearchTool {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self, call: &ToolCall, _ctx: &ToolContext) -> Result<ToolOutput> {
        let query = string_arg(call, NAME, "query")?;
        let service = Service { tool: NAME, name: "Bing Web Search" };
        let count = TOP_K.to_string();
        let answer = get_json(
            &self.http,
            &service,
            &self.url,
            &[("count", &count), ("textDecorations", "True"), ("textFormat", "HTML"), ("q", query)],
            &[("Ocp-Apim-Subscription-Key", &self.api_key)],
        )
        .await?;
        Ok(ToolOutput::text(call, pyjson::dumps(&bing_summary(&answer))))
    }
}

/// The fields of `item` named in `keys`, in the item's own order.
fn pick(item: &Value, keys: &[&str]) -> Value {
    let picked: Map<String, Value> = item
        .as_object()
        .map(|o| o.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Value::Object(picked)
}

fn pick_all(results: &[Value], keys: &[&str]) -> Value {
    Value::Array(results.iter().map(|r| pick(r, keys)).collect())
}

/// Brave's answer lists its ranking in `mixed.main`: each entry names a result section
/// (`web`, `faq`, `infobox`, `videos`, `locations`, `news`) and, for single results, an index
/// into it. The first three entries are kept; list-like sections contribute all their results.
pub fn brave_summary(answer: &Value) -> Value {
    let query = answer.pointer("/query/original").cloned().unwrap_or(Value::Null);
    let mut top_k = Vec::new();
    let main = answer.pointer("/mixed/main").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for entry in main.iter().take(TOP_K) {
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or_default();
        let results = answer
            .get(kind)
            .and_then(|s| s.get("results"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let indexed = |keys: &[&str]| {
            let idx = entry.get("index").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok());
            idx.and_then(|i| results.get(i)).map_or_else(|| json!({}), |r| pick(r, keys))
        };
        let summary = match kind {
            "web" => indexed(&["type", "title", "url", "description", "date", "extra_snippets"]),
            "infobox" => indexed(&["type", "title", "url", "description", "long_desc"]),
            "faq" => pick_all(results, &["type", "question", "answer", "title", "url"]),
            "videos" => pick_all(results, &["type", "url", "title", "description", "date"]),
            "locations" => pick_all(
                results,
                &[
                    "type",
                    "title",
                    "url",
                    "description",
                    "coordinates",
                    "postal_address",
                    "contact",
                    "rating",
                    "distance",
                    "zoom_level",
                ],
            ),
            "news" => pick_all(results, &["type", "title", "url", "description"]),
            _ => json!([]),
        };
        top_k.push(summary);
    }
    json!({"query": query, "top_k": top_k})
}

/// Bing's answer: web pages with their name, URL and snippet, then the news results (if any)
/// as one list.
pub fn bing_summary(answer: &Value) -> Value {
    let query = answer.pointer("/queryContext/originalQuery").cloned().unwrap_or(Value::Null);
    let mut top_k = Vec::new();
    if let Some(pages) = answer.pointer("/webPages/value").and_then(Value::as_array) {
        top_k.extend(pages.iter().map(|p| pick(p, &["name", "url", "snippet"])));
    }
    if let Some(news) = answer.pointer("/news/value").and_then(Value::as_array) {
        top_k.push(pick_all(news, &["name", "url", "description"]));
    }
    json!({"query": query, "top_k": top_k})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brave_keeps_the_top_three_ranked_results() {
        let answer = json!({
            "query": {"original": "llamas", "more_results_available": true},
            "mixed": {"type": "mixed", "main": [
                {"type": "infobox", "index": 0, "all": false},
                {"type": "web", "index": 1, "all": false},
                {"type": "faq", "all": true},
                {"type": "web", "index": 0, "all": false}
            ]},
            "web": {"type": "search", "results": [
                {"title": "first", "url": "https://a", "description": "d0", "is_source_local": false, "type": "search_result"},
                {"type": "search_result", "title": "second", "url": "https://b", "description": "d1", "page_age": "x",
                 "extra_snippets": ["e"], "profile": {"name": "b"}}
            ]},
            "infobox": {"type": "graph", "results": [{"type": "infobox", "title": "Llama", "long_desc": "South American camelid", "attributes": []}]},
            "faq": {"type": "faq", "results": [{"question": "q?", "answer": "a.", "title": "t", "url": "https://f", "meta_url": {}}]}
        });
        assert_eq!(
            brave_summary(&answer),
            json!({"query": "llamas", "top_k": [
                {"type": "infobox", "title": "Llama", "long_desc": "South American camelid"},
                {"type": "search_result", "title": "second", "url": "https://b", "description": "d1", "extra_snippets": ["e"]},
                [{"question": "q?", "answer": "a.", "title": "t", "url": "https://f"}]
            ]})
        );
        assert_eq!(brave_summary(&json!({})), json!({"query": null, "top_k": []}));
    }

    #[test]
    fn bing_keeps_pages_then_news() {
        let answer = json!({
            "_type": "SearchResponse",
            "queryContext": {"originalQuery": "llamas"},
            "webPages": {"value": [{"id": "x", "name": "Llama", "url": "https://l", "snippet": "s", "language": "en"}]},
            "news": {"value": [{"name": "N", "url": "https://n", "description": "d", "datePublished": "2024"}]}
        });
        assert_eq!(
            bing_summary(&answer),
            json!({"query": "llamas", "top_k": [
                {"name": "Llama", "url": "https://l", "snippet": "s"},
                [{"name": "N", "url": "https://n", "description": "d"}]
            ]})
        );
    }
}

//! The `remote::weaviate` memory provider, through the HTTP server with the cluster and key in
//! the `X-LlamaStack-ProviderData` header, against a fake Weaviate: no Weaviate server can run
//! here. The fake keeps classes and objects in memory and answers only what Weaviate documents:
//!
//! - schema: `GET /v1/schema/{className}` (404 when missing), `POST /v1/schema` (a class with
//!   `vectorizer`, `vectorIndexConfig.distance` and typed `properties`; 422 when it exists),
//!   `DELETE /v1/schema/{className}` —
//!   <https://weaviate.io/developers/weaviate/api/rest_legacy/schema>
//! - `POST /v1/batch/objects` (`{"objects": [{class, properties, vector}]}`, answered by one
//!   entry per object, object-level errors in `result.errors.error[].message` while the request
//!   itself succeeds) and `DELETE /v1/batch/objects` (`{"match": {class, where}, output, dryRun}`,
//!   answered with `results: {matches, limit, successful, failed, objects}`, at most
//!   `QUERY_MAXIMUM_RESULTS` objects per request) —
//!   <https://weaviate.io/developers/weaviate/api/rest_legacy/batch>,
//!   <https://weaviate.io/developers/weaviate/manage-data/delete>
//! - where filters (`path`, `operator` `And`/`Or`/`Equal`/`NotEqual`/`ContainsAny`, `operands`,
//!   `valueText`/`valueTextArray`/`valueInt`) —
//!   <https://docs.weaviate.io/weaviate/api/graphql/filters>
//! - `POST /v1/graphql` with `{ Get { Class(nearVector: {vector: [...]}, limit: N) { props
//!   _additional { distance certainty id } } } }`, answered `{"data": {"Get": {Class: [...]}}}`
//!   or `{"errors": [{"message"}]}` —
//!   <https://docs.weaviate.io/weaviate/api/graphql/search-operators>,
//!   <https://docs.weaviate.io/weaviate/api/graphql/additional-properties>
//! - API keys as `Authorization: Bearer <key>`, 401 otherwise.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::stack::Stack;
use serde_json::{Map, Value, json};

const KEY: &str = "weaviate-test-key";

#[derive(Clone)]
struct ClassDef {
    /// Property name → data type (`text`, `int`).
    properties: HashMap<String, String>,
    distance: String,
    raw: Value,
}

struct Object {
    id: String,
    class: String,
    properties: Map<String, Value>,
    vector: Vec<f64>,
}

#[derive(Default)]
struct Fake {
    classes: HashMap<String, ClassDef>,
    objects: Vec<Object>,
    /// Objects of this document are refused with an object-level error.
    refuse_document: Option<String>,
    /// `QUERY_MAXIMUM_RESULTS`: the most objects one batch delete removes.
    delete_limit: usize,
    delete_rounds: usize,
    next_id: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": [{"message": message}]}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}"))
}

fn valid_class_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase()) && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

async fn get_class(State(s): State<Shared>, headers: HeaderMap, Path(class): Path<String>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled, please provide an auth scheme");
    }
    match s.lock().unwrap().classes.get(&class) {
        Some(c) => Json(c.raw.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_class(State(s): State<Shared>, headers: HeaderMap, Path(class): Path<String>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled");
    }
    let mut f = s.lock().unwrap();
    f.classes.remove(&class);
    f.objects.retain(|o| o.class != class);
    StatusCode::OK.into_response()
}

async fn create_class(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled");
    }
    let Some(name) = body["class"].as_str().filter(|n| valid_class_name(n)) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "class name must match /^[A-Z][_0-9A-Za-z]*$/");
    };
    let mut properties = HashMap::new();
    for p in body["properties"].as_array().cloned().unwrap_or_default() {
        let (Some(pname), Some(dtype)) = (p["name"].as_str(), p["dataType"][0].as_str()) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "a property needs `name` and `dataType: [type]`");
        };
        properties.insert(pname.to_owned(), dtype.to_owned());
    }
    let mut f = s.lock().unwrap();
    if f.classes.contains_key(name) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("class name {name:?} already exists"));
    }
    let distance = body["vectorIndexConfig"]["distance"].as_str().unwrap_or("cosine").to_owned();
    let mut raw = body.clone();
    raw["vectorIndexConfig"]["distance"] = json!(distance);
    f.classes.insert(name.to_owned(), ClassDef { properties, distance, raw: raw.clone() });
    Json(raw).into_response()
}

fn type_ok(dtype: &str, v: &Value) -> bool {
    match dtype {
        "text" => v.is_string(),
        "int" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

async fn batch_add(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled");
    }
    let Some(objects) = body["objects"].as_array() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "`objects` is required");
    };
    let mut f = s.lock().unwrap();
    let mut out = Vec::new();
    for o in objects {
        let class = o["class"].as_str().unwrap_or_default().to_owned();
        let props = o["properties"].as_object().cloned().unwrap_or_default();
        let vector: Vec<f64> =
            o["vector"].as_array().map(|v| v.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        let problem = match f.classes.get(&class) {
            None => Some(format!("class {class:?} not found in schema")),
            Some(def) => props
                .iter()
                .find(|(k, v)| !def.properties.get(*k).is_some_and(|t| type_ok(t, v)))
                .map(|(k, _)| format!("invalid property {k:?} for class {class:?}"))
                .or_else(|| {
                    let dim = f.objects.iter().find(|x| x.class == class).map(|x| x.vector.len());
                    dim.filter(|d| *d != vector.len()).map(|d| {
                        format!(
                            "new node has a vector with length {}. Existing nodes have vectors with length {d}",
                            vector.len()
                        )
                    })
                }),
        }
        .or_else(|| {
            let doc = props.get("document_id").and_then(Value::as_str);
            (doc.is_some() && doc == f.refuse_document.as_deref()).then(|| "store is read-only".to_owned())
        });
        f.next_id += 1;
        let id = format!("00000000-0000-4000-8000-{:012x}", f.next_id);
        let mut entry = json!({"class": class, "id": id, "properties": props, "result": {}});
        match problem {
            Some(message) => entry["result"] = json!({"errors": {"error": [{"message": message}]}}),
            None => f.objects.push(Object { id, class, properties: props, vector }),
        }
        out.push(entry);
    }
    Json(Value::Array(out)).into_response()
}

/// Evaluates a where filter on an object's properties; `Err` for what the fake does not know.
fn matches(filter: &Value, props: &Map<String, Value>) -> Result<bool, String> {
    let op = filter["operator"].as_str().ok_or("a filter needs `operator`")?;
    if op == "And" || op == "Or" {
        let operands = filter["operands"].as_array().ok_or("`And`/`Or` need `operands`")?;
        let results: Result<Vec<bool>, String> = operands.iter().map(|o| matches(o, props)).collect();
        let results = results?;
        return Ok(if op == "And" { results.iter().all(|b| *b) } else { results.iter().any(|b| *b) });
    }
    let path = filter["path"][0].as_str().ok_or("a filter needs `path`")?;
    let value = props.get(path).cloned().unwrap_or(Value::Null);
    let given = ["valueText", "valueTextArray", "valueInt"]
        .iter()
        .find_map(|k| filter.get(*k))
        .ok_or("a filter needs a value (valueText, valueTextArray, valueInt)")?;
    match op {
        "Equal" => Ok(&value == given),
        "NotEqual" => Ok(&value != given),
        "ContainsAny" => Ok(given.as_array().ok_or("ContainsAny takes an array")?.contains(&value)),
        other => Err(format!("operator {other} not supported by this fake")),
    }
}

async fn batch_delete(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled");
    }
    let class = body["match"]["class"].as_str().unwrap_or_default().to_owned();
    let dry_run = body["dryRun"].as_bool().unwrap_or(false);
    let mut f = s.lock().unwrap();
    if !f.classes.contains_key(&class) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("class {class:?} not found"));
    }
    let mut hit = Vec::new();
    for (i, o) in f.objects.iter().enumerate() {
        if o.class != class {
            continue;
        }
        match matches(&body["match"]["where"], &o.properties) {
            Ok(true) => hit.push(i),
            Ok(false) => {}
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e),
        }
    }
    let limit = f.delete_limit;
    let matched = hit.len();
    let mut done = 0;
    if !dry_run {
        f.delete_rounds += 1;
        for i in hit.into_iter().take(limit).rev() {
            f.objects.remove(i);
            done += 1;
        }
    }
    Json(json!({
        "match": body["match"], "output": body["output"], "dryRun": dry_run,
        "results": {"matches": matched, "limit": limit, "successful": done, "failed": 0, "objects": []},
    }))
    .into_response()
}

/// A GraphQL document, as far as `Get` queries go: selections with arguments and sub-selections.
#[derive(Debug)]
struct Field {
    name: String,
    args: Map<String, Value>,
    selections: Vec<Field>,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.i < self.s.len() && (self.s[self.i].is_ascii_whitespace() || self.s[self.i] == b',') {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("Syntax Error: expected {:?} at {}", c as char, self.i))
        }
    }
    fn name(&mut self) -> Result<String, String> {
        self.skip();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("Syntax Error: expected a name at {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                while self.peek() != Some(b'}') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    m.insert(k, self.value()?);
                }
                self.i += 1;
                Ok(Value::Object(m))
            }
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                while self.peek() != Some(b']') {
                    v.push(self.value()?);
                }
                self.i += 1;
                Ok(Value::Array(v))
            }
            Some(b'"') => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i] != b'"' {
                    self.i += if self.s[self.i] == b'\\' { 2 } else { 1 };
                }
                self.i += 1;
                serde_json::from_slice(&self.s[start..self.i]).map_err(|e| e.to_string())
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                serde_json::from_slice(&self.s[start..self.i]).map_err(|e| format!("bad number: {e}"))
            }
            _ => Ok(Value::String(self.name()?)),
        }
    }
    fn selections(&mut self) -> Result<Vec<Field>, String> {
        self.expect(b'{')?;
        let mut out = Vec::new();
        while self.peek() != Some(b'}') {
            let name = self.name()?;
            let mut args = Map::new();
            if self.peek() == Some(b'(') {
                self.i += 1;
                while self.peek() != Some(b')') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    args.insert(k, self.value()?);
                }
                self.i += 1;
            }
            let selections = if self.peek() == Some(b'{') { self.selections()? } else { Vec::new() };
            out.push(Field { name, args, selections });
        }
        self.i += 1;
        Ok(out)
    }
}

fn graphql_get(f: &Fake, query: &str) -> Result<Value, String> {
    let doc = Parser { s: query.as_bytes(), i: 0 }.selections()?;
    let get = doc.iter().find(|x| x.name == "Get").ok_or("only Get queries are served by this fake")?;
    let mut data = Map::new();
    for sel in &get.selections {
        let class = f
            .classes
            .get(&sel.name)
            .ok_or_else(|| format!("Cannot query field \"{}\" on type \"GetObjectsObj\".", sel.name))?;
        let near: Vec<f64> = sel
            .args
            .get("nearVector")
            .and_then(|n| n.get("vector"))
            .and_then(Value::as_array)
            .ok_or("nearVector needs `vector`")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let limit = sel.args.get("limit").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()).unwrap_or(100);
        let mut hits: Vec<(&Object, f64)> = f
            .objects
            .iter()
            .filter(|o| o.class == sel.name)
            .map(|o| {
                let dot: f64 = o.vector.iter().zip(&near).map(|(a, b)| a * b).sum();
                let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                let cos = dot / (norm(&o.vector) * norm(&near)).max(1e-12);
                assert_eq!(class.distance, "cosine", "the fake measures cosine distance only");
                (o, 1.0 - cos)
            })
            .collect();
        hits.sort_by(|a, b| a.1.total_cmp(&b.1));
        let rows: Vec<Value> = hits
            .into_iter()
            .take(limit)
            .map(|(o, distance)| {
                let mut row = Map::new();
                for field in &sel.selections {
                    if field.name == "_additional" {
                        let mut add = Map::new();
                        for a in &field.selections {
                            let v = match a.name.as_str() {
                                "distance" => json!(distance),
                                "certainty" => json!((2.0 - distance) / 2.0),
                                "id" => json!(o.id),
                                _ => Value::Null,
                            };
                            add.insert(a.name.clone(), v);
                        }
                        row.insert("_additional".into(), Value::Object(add));
                    } else {
                        row.insert(field.name.clone(), o.properties.get(&field.name).cloned().unwrap_or(Value::Null));
                    }
                }
                Value::Object(row)
            })
            .collect();
        data.insert(sel.name.clone(), Value::Array(rows));
    }
    Ok(json!({"data": {"Get": data}}))
}

async fn graphql(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "anonymous access not enabled");
    }
    let f = s.lock().unwrap();
    match graphql_get(&f, body["query"].as_str().unwrap_or_default()) {
        Ok(v) => Json(v).into_response(),
        Err(message) => Json(json!({"errors": [{"message": message}]})).into_response(),
    }
}

async fn start_fake(state: Shared) -> String {
    let app = axum::Router::new()
        .route("/v1/schema", post(create_class))
        .route("/v1/schema/{class}", get(get_class).delete(delete_class))
        .route("/v1/batch/objects", post(batch_add).delete(batch_delete))
        .route("/v1/graphql", post(graphql))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

struct Http {
    base: String,
    header: String,
    client: reqwest::Client,
}

impl Http {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("X-LlamaStack-ProviderData", &self.header)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn query(&self, bank: &str, text: &str, params: Value) -> (Vec<String>, Vec<f64>) {
        let (status, r) = self.post("/memory/query", json!({"bank_id": bank, "query": text, "params": params})).await;
        assert_eq!(status, 200, "{r}");
        let ids =
            r["chunks"].as_array().unwrap().iter().map(|c| c["document_id"].as_str().unwrap().to_owned()).collect();
        let scores = r["scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        (ids, scores)
    }
}

fn doc(id: &str, content: &str) -> Value {
    json!({"document_id": id, "content": content})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn weaviate_banks_and_documents_through_the_server() {
    if std::env::var_os("LLAMA_STACK_PYTHON").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "LLAMA_STACK_PYTHON is not set");
        eprintln!("skipping: LLAMA_STACK_PYTHON is not set (the Llama 3 tokenizer comes from its llama_models)");
        return;
    }
    let fake: Shared = Arc::new(Mutex::new(Fake { delete_limit: 2, ..Fake::default() }));
    let cluster = start_fake(Arc::clone(&fake)).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r"
version: '2'
image_name: weaviate-test
apis: [memory]
providers:
  memory:
  - provider_id: weaviate
    provider_type: remote::weaviate
    config: {{}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        dir.path().display()
    );
    let stack = Arc::new(Stack::build(StackRunConfig::from_yaml(&yaml, "test").unwrap()).await.unwrap());
    let (base, stop, _task) = common::serve_stack(stack).await;
    let provider_data = json!({"weaviate_cluster_url": cluster, "weaviate_api_key": KEY}).to_string();
    let h = Http { base: base.clone(), header: provider_data, client: reqwest::Client::new() };

    // Registering reaches no cluster (the request carries none); the class comes with the first insert.
    let (status, r) = h
        .post(
            "/memory_banks/register",
            json!({"memory_bank": {"identifier": "notes", "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 64}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(fake.lock().unwrap().classes.is_empty());
    let (status, r) = h
        .post(
            "/memory/insert",
            json!({"bank_id": "notes", "documents": [
                doc("cats", "Cats purr softly and sleep in the sun most of the day."),
                doc("volcano", "A volcano erupts molten lava and ash from deep inside the earth."),
                doc("bread", "Bakers knead dough, let it rise, and bake bread in a hot oven."),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    {
        let f = fake.lock().unwrap();
        let class = &f.classes["Notes"];
        assert_eq!(class.raw["vectorizer"], "none");
        assert_eq!(f.objects.len(), 3);
        let chunk: Value = serde_json::from_str(f.objects[0].properties["chunk_content"].as_str().unwrap()).unwrap();
        assert_eq!(chunk["document_id"], f.objects[0].properties["document_id"]);
        assert!(chunk["token_count"].as_i64().unwrap() > 0);
    }
    let (ids, scores) = h.query("notes", "lava eruption", json!({"max_chunks": 2})).await;
    assert_eq!(ids[0], "volcano");
    assert_eq!(ids.len(), 2);
    assert!(scores[0] > scores[1] && scores[0] <= 1.0 + 1e-6, "{scores:?}");
    let (ids, _) = h.query("notes", "lava eruption", json!({})).await;
    assert_eq!(ids.len(), 3, "max_chunks defaults to 3");
    let (ids, _) =
        h.query("notes", "lava eruption", json!({"max_chunks": 10, "score_threshold": scores[0] - 1e-4})).await;
    assert_eq!(ids, ["volcano"]);

    // Re-inserting replaces; the old chunks go in several delete rounds (the fake's limit is 2).
    let long = "Kittens chase laser pointers around the kitchen floor all afternoon long. ".repeat(12);
    let (status, r) = h.post("/memory/insert", json!({"bank_id": "notes", "documents": [doc("cats", &long)]})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = h
        .post("/memory/insert", json!({"bank_id": "notes", "documents": [doc("cats", "Dogs bark at the postman.")]}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(fake.lock().unwrap().delete_rounds >= 3);
    let (ids, _) = h.query("notes", "dog barking", json!({"max_chunks": 10})).await;
    assert_eq!(ids.iter().filter(|i| *i == "cats").count(), 1, "{ids:?}");
    assert_eq!(ids[0], "cats");
    assert_eq!(fake.lock().unwrap().objects.len(), 3);

    // An object Weaviate refuses inside a successful batch request: the insert fails naming the
    // cause, and what it added is taken out again.
    fake.lock().unwrap().refuse_document = Some("broken".into());
    let before = h.query("notes", "anything", json!({"max_chunks": 100})).await;
    let (status, r) = h
        .post("/memory/insert", json!({"bank_id": "notes", "documents": [doc("fish", "Fish swim in coral reefs."), doc("broken", "Some text.")]}))
        .await;
    assert_eq!(status, 502, "{r}");
    assert!(r.to_string().contains("read-only"), "{r}");
    assert_eq!(h.query("notes", "anything", json!({"max_chunks": 100})).await, before);
    assert_eq!(fake.lock().unwrap().objects.len(), 3);
    fake.lock().unwrap().refuse_document = None;

    // Bad input: 4xx naming the document or field.
    for (docs, needle) in [
        (json!([doc("ok", "fine"), {"document_id": "secret", "content": {"uri": "file:///etc/passwd"}}]), "secret"),
        (json!([doc("blank", "  ")]), "blank"),
    ] {
        let (status, r) = h.post("/memory/insert", json!({"bank_id": "notes", "documents": docs})).await;
        assert_eq!(status, 400, "{r}");
        assert!(r.to_string().contains(&format!("`{needle}`")), "{r}");
    }
    let (status, r) =
        h.post("/memory/query", json!({"bank_id": "notes", "query": "x", "params": {"max_chunks": -1}})).await;
    assert!(status == 400 && r.to_string().contains("max_chunks"), "{r}");
    let (status, r) = h.post("/memory/insert", json!({"bank_id": "nope", "documents": [doc("a", "x")]})).await;
    assert!(status == 400 && r.to_string().contains("nope"), "{r}");
    let (status, r) =
        h.post("/memory_banks/register", json!({"memory_bank": {"identifier": "kw", "type": "keyword"}})).await;
    assert!(status == 400 && r.to_string().contains("kw"), "{r}");
    assert_eq!(fake.lock().unwrap().objects.len(), 3);

    // Update and delete.
    let (status, r) = h.post("/memory/update", json!({"bank_id": "notes", "documents": [doc("ghost", "x")]})).await;
    assert!(status == 400 && r.to_string().contains("ghost"), "{r}");
    let (status, r) = h
        .post(
            "/memory/update",
            json!({"bank_id": "notes", "documents": [doc("bread", "Sourdough needs a starter of wild yeast.")]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(h.query("notes", "wild yeast starter", json!({"max_chunks": 1})).await.0, ["bread"]);
    let (status, r) =
        h.post("/memory/documents/delete", json!({"bank_id": "notes", "document_ids": ["bread", "never"]})).await;
    assert_eq!(status, 200, "{r}");
    let (ids, _) = h.query("notes", "wild yeast starter", json!({"max_chunks": 10})).await;
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&"bread".to_owned()));

    // A bank id that is no class name gets a safe one.
    let odd = "Docs: Animals/2024";
    let (status, r) = h
        .post("/memory_banks/register", json!({"memory_bank": {"identifier": odd, "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 32}}))
        .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = h
        .post("/memory/insert", json!({"bank_id": odd, "documents": [doc("moon", "The moon orbits the earth.")]}))
        .await;
    assert_eq!(status, 200, "{r}");
    let class = llama_stack_rs::memory::weaviate_class_name(odd);
    assert!(fake.lock().unwrap().classes.contains_key(&class), "{class}");
    assert_eq!(h.query(odd, "lunar orbit", json!({})).await.0, ["moon"]);

    // A class removed behind the stack's back: queries find nothing, the next insert recreates it.
    let resp =
        reqwest::Client::new().delete(format!("{cluster}/v1/schema/{class}")).bearer_auth(KEY).send().await.unwrap();
    assert!(resp.status().is_success());
    assert!(h.query(odd, "lunar orbit", json!({})).await.0.is_empty());
    let (status, r) =
        h.post("/memory/insert", json!({"bank_id": odd, "documents": [doc("sun", "The sun is a star.")]})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(h.query(odd, "a star", json!({})).await.0, ["sun"]);

    // Dropping a bank deletes its class and its registration; it cannot be used afterwards.
    let (status, r) = h.post("/memory/drop", json!({"bank_id": odd})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r, json!(odd));
    assert!(!fake.lock().unwrap().classes.contains_key(&class));
    let (status, r) = h.post("/memory/insert", json!({"bank_id": odd, "documents": [doc("x", "y")]})).await;
    assert!(status == 400 && r.to_string().contains(odd), "{r}");
    let listed = reqwest::get(format!("{base}/memory_banks/list")).await.unwrap().text().await.unwrap();
    assert!(listed.contains("notes") && !listed.contains("Animals"), "{listed}");

    // Without provider data, or with a wrong key: clear errors naming what is missing.
    let no_data = Http { base: base.clone(), header: "{}".into(), client: reqwest::Client::new() };
    let (status, r) = no_data.post("/memory/query", json!({"bank_id": "notes", "query": "cats"})).await;
    assert!(status == 400 && r.to_string().contains("weaviate_cluster_url"), "{r}");
    let wrong = Http {
        base: base.clone(),
        header: json!({"weaviate_cluster_url": cluster, "weaviate_api_key": "wrong"}).to_string(),
        client: reqwest::Client::new(),
    };
    let (status, r) = wrong.post("/memory/query", json!({"bank_id": "notes", "query": "cats"})).await;
    assert!(status == 403 && r.to_string().contains("weaviate_api_key"), "{status} {r}");
    // A cluster that is not there: 503 naming the provider.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = Http {
        base,
        header: json!({"weaviate_cluster_url": format!("http://127.0.0.1:{port}"), "weaviate_api_key": KEY})
            .to_string(),
        client: reqwest::Client::new(),
    };
    let (status, r) = down.post("/memory/query", json!({"bank_id": "notes", "query": "cats"})).await;
    assert!(status == 503 && r.to_string().contains("weaviate"), "{status} {r}");
    let _ = stop.send(());
}

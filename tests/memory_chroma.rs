//! The `remote::chromadb` memory provider against a real Chroma server (the `chromadb` wheel's
//! own server, HTTP API v2), started by this test on a free loopback port with
//! `$LSRS_CHROMA_PYTHON` (scripts/test.sh points it at the Python of the environment it installs
//! `chromadb` into). Without that variable the test is skipped, unless `CI=true`, where it
//! fails. Chunking needs the Llama 3 tokenizer (`$LLAMA_STACK_PYTHON`) and vectors the embedded
//! all-MiniLM-L6-v2.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![allow(clippy::panic, reason = "a panic is a failed test")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::stack::Stack;
use llama_stack_rs::types::memory::{MemoryBankDocument, QueryDocumentsResponse};
use llama_stack_rs::types::memory_banks::MemoryBankDef;
use serde_json::{Value, json};

/// Runs the server the `chroma` command runs, without importing the `chromadb` Python package
/// (so the package can be installed without its many dependencies).
const LAUNCH: &str = "import sys, chromadb_rust_bindings as c; c.cli(['chroma', *sys.argv[1:]])";

struct Chroma {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Chroma {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chroma_python() -> Option<String> {
    let python = std::env::var("LSRS_CHROMA_PYTHON").ok().filter(|v| !v.is_empty());
    if python.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "LSRS_CHROMA_PYTHON is not set: point it at a Python with the `chromadb` package \
             (scripts/test.sh installs it and sets the variable)"
        );
        eprintln!(
            "skipping: LSRS_CHROMA_PYTHON is not set (a Python with `chromadb` installed runs the Chroma server)"
        );
    }
    python
}

fn start_chroma(python: &str) -> Chroma {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("chroma.log")).unwrap();
    let child = Command::new(python)
        .args(["-c", LAUNCH, "run", "--host", "127.0.0.1", "--port", &port.to_string(), "--path"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut chroma = Chroma { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && plain_http::get_ok(&format!("http://127.0.0.1:{port}/api/v2/heartbeat"));
        if up {
            return chroma;
        }
        if let Some(status) = chroma.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(chroma.dir.path().join("chroma.log")).unwrap_or_default();
            panic!("the Chroma server exited ({status}) before it answered:\n{log}");
        }
        assert!(Instant::now() < deadline, "the Chroma server did not answer within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tiny blocking GET on a plain socket, so the readiness loop needs no runtime.
mod plain_http {
    use std::io::{Read, Write};

    pub fn get_ok(url: &str) -> bool {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = std::net::TcpStream::connect(host) else { return false };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.1 200")
    }
}

async fn stack(port: u16, dir: &Path) -> Stack {
    let yaml = format!(
        r"
version: '2'
image_name: chroma-test
apis: [memory]
providers:
  memory:
  - provider_id: chroma
    provider_type: remote::chromadb
    config: {{host: 127.0.0.1, port: {port}}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        dir.display()
    );
    Stack::build(StackRunConfig::from_yaml(&yaml, "test").unwrap()).await.unwrap()
}

fn doc(id: &str, content: &Value) -> MemoryBankDocument {
    serde_json::from_value(json!({"document_id": id, "content": content, "metadata": {"source": id}})).unwrap()
}

fn ids(r: &QueryDocumentsResponse) -> Vec<&str> {
    r.chunks.iter().map(|c| c.document_id.as_str()).collect()
}

async fn query(s: &Stack, bank: &str, text: &str, params: Value) -> QueryDocumentsResponse {
    let (def, p) = s.memory_banks.resolve(bank).await.unwrap();
    p.query_documents(&def, text.into(), params.as_object().cloned(), &RequestContext::default()).await.unwrap()
}

/// Chroma's own view of a collection, straight from its API.
async fn chroma_get(port: u16, path: &str, body: Option<Value>) -> Value {
    let base = format!("http://127.0.0.1:{port}/api/v2/tenants/default_tenant/databases/default_database/collections");
    let client = reqwest::Client::new();
    let req = match body {
        Some(b) => client.post(format!("{base}{path}")).json(&b),
        None => client.get(format!("{base}{path}")),
    };
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn chroma_banks_documents_errors_and_two_stacks() {
    let Some(python) = chroma_python() else { return };
    if std::env::var_os("LLAMA_STACK_PYTHON").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "LLAMA_STACK_PYTHON is not set");
        eprintln!("skipping: LLAMA_STACK_PYTHON is not set (the Llama 3 tokenizer comes from its llama_models)");
        return;
    }
    let chroma = start_chroma(&python);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = stack(chroma.port, d1.path()).await;
    let ctx = RequestContext::default();

    // A bank id Chroma would refuse as a collection name, and a plain one.
    for id in ["Docs: Animals/2024", "notes"] {
        let bank: MemoryBankDef = serde_json::from_value(json!({
            "identifier": id, "type": "vector", "provider_id": "chroma",
            "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 64,
        }))
        .unwrap();
        a.memory_banks.register(bank).await.unwrap();
    }
    let bank = "Docs: Animals/2024";
    let (def, p) = a.memory_banks.resolve(bank).await.unwrap();
    p.insert_documents(
        &def,
        vec![
            doc("cats", &json!("Cats purr softly and sleep in the sun most of the day.")),
            doc("volcano", &json!("A volcano erupts molten lava and ash from deep inside the earth.")),
            doc("bread", &json!(["Bakers knead dough, let it rise,", "and bake bread in a hot oven."])),
        ],
        None,
        &ctx,
    )
    .await
    .unwrap();
    let r = query(&a, bank, "lava eruption", json!({"max_chunks": 2})).await;
    assert_eq!(ids(&r)[0], "volcano");
    assert_eq!(r.chunks.len(), 2);
    assert!(r.scores[0] > r.scores[1], "{:?}", r.scores);
    assert!(r.scores[0] <= 1.0 + 1e-6 && r.scores[0] > 0.3, "{:?}", r.scores);
    let r = query(&a, bank, "lava eruption", json!({})).await;
    assert_eq!(r.chunks.len(), 3, "max_chunks defaults to 3");
    let top = r.scores[0];
    let r = query(&a, bank, "lava eruption", json!({"max_chunks": 10, "score_threshold": top - 1e-4})).await;
    assert_eq!(ids(&r), ["volcano"], "{:?}", r.scores);
    assert!(query(&a, "notes", "lava", json!({})).await.chunks.is_empty(), "banks are separate");

    // What Chroma holds: the bank in the collection's metadata, chunks as upstream's chunk JSON.
    let name = llama_stack_rs::memory::chroma_collection_name(bank);
    assert!(name.starts_with("lsrs_"), "{name}");
    let collection = chroma_get(chroma.port, &format!("/{name}"), None).await;
    let stored: Value = serde_json::from_str(collection["metadata"]["bank"].as_str().unwrap()).unwrap();
    assert_eq!(stored["identifier"], bank);
    assert_eq!(collection["configuration_json"]["hnsw"]["space"], "cosine");
    let id = collection["id"].as_str().unwrap().to_owned();
    let records = chroma_get(
        chroma.port,
        &format!("/{id}/get"),
        Some(json!({"where": {"document_id": "cats"}, "include": ["documents", "metadatas"]})),
    )
    .await;
    let chunk: Value = serde_json::from_str(records["documents"][0].as_str().unwrap()).unwrap();
    assert_eq!(chunk["document_id"], "cats");
    assert!(chunk["content"].as_str().unwrap().contains("purr") && chunk["token_count"].as_i64().unwrap() > 0);

    // Re-inserting a document id replaces it.
    p.insert_documents(&def, vec![doc("cats", &json!("Kittens chase laser pointers around the kitchen."))], None, &ctx)
        .await
        .unwrap();
    let r = query(&a, bank, "laser pointer kitten", json!({"max_chunks": 5})).await;
    assert_eq!(ids(&r).iter().filter(|i| **i == "cats").count(), 1);
    assert_eq!(ids(&r)[0], "cats");
    assert!(serde_json::to_string(&r.chunks[0].content).unwrap().contains("Kittens"));

    // Bad input: a 4xx naming the document, and the bank as it was.
    let all = json!({"max_chunks": 100});
    let before = query(&a, bank, "anything at all", all.clone()).await;
    for (docs, needle) in [
        (
            vec![
                doc("fish", &json!("Fish swim in coral reefs.")),
                doc("secret", &json!({"uri": "file:///etc/passwd"})),
            ],
            "secret",
        ),
        (vec![doc("blank", &json!("   "))], "blank"),
        (vec![doc("twice", &json!("one")), doc("twice", &json!("two"))], "twice"),
    ] {
        let err = p.insert_documents(&def, docs, None, &ctx).await.unwrap_err();
        assert_eq!(err.status_code(), 400, "{err}");
        assert!(err.to_string().contains(&format!("`{needle}`")), "{err}");
    }
    let after = query(&a, bank, "anything at all", all.clone()).await;
    assert_eq!(ids(&after), ids(&before));
    let none = a.memory_banks.resolve("nope").await.err().unwrap();
    assert_eq!(none.status_code(), 400);
    assert!(none.to_string().contains("nope"), "{none}");
    let err =
        p.query_documents(&def, "x".into(), json!({"max_chunks": -1}).as_object().cloned(), &ctx).await.unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("max_chunks"), "{err}");
    let err = p.query_documents(&def, "  ".into(), None, &ctx).await.unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("query"), "{err}");

    // Update: an unknown document is refused, a known one replaced.
    let err = p.update_documents(&def, vec![doc("ghost", &json!("Nothing here."))], &ctx).await.unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("ghost"), "{err}");
    let err = p.update_documents(&a_notes(&a).await, vec![doc("cats", &json!("x"))], &ctx).await.unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("cats"), "{err}");
    p.update_documents(&def, vec![doc("bread", &json!("Sourdough needs a starter culture of wild yeast."))], &ctx)
        .await
        .unwrap();
    let r = query(&a, bank, "wild yeast starter", json!({"max_chunks": 1})).await;
    assert_eq!(ids(&r), ["bread"]);

    // A second stack (its own registration store) lists the bank from Chroma and serves it.
    let b = stack(chroma.port, d2.path()).await;
    let listed: Vec<String> = b.memory_banks.list().await.unwrap().iter().map(|x| x.identifier().to_owned()).collect();
    assert!(listed.contains(&bank.to_owned()) && listed.contains(&"notes".to_owned()), "{listed:?}");
    let r = query(&b, bank, "wild yeast starter", json!({"max_chunks": 1})).await;
    assert_eq!(ids(&r), ["bread"]);
    let (def_b, p_b) = b.memory_banks.resolve(bank).await.unwrap();
    p_b.delete_documents(&def_b, vec!["bread".into(), "never-there".into()], &ctx).await.unwrap();
    let r = query(&a, bank, "wild yeast starter", all.clone()).await;
    assert!(!ids(&r).contains(&"bread"), "{:?}", ids(&r));
    assert_eq!(r.chunks.len(), 2);

    // Keyword banks are refused, naming the bank.
    let kw: MemoryBankDef =
        serde_json::from_value(json!({"identifier": "kw", "type": "keyword", "provider_id": "chroma"})).unwrap();
    let err = a.memory_banks.register(kw).await.unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("kw"), "{err}");

    // Dropping a bank deletes its collection; a process that still knows the bank cannot bring
    // it back with an insert.
    let notes = a_notes(&a).await;
    let p_notes_b = b.memory_banks.resolve("notes").await.unwrap();
    p.drop_memory_bank(&notes, &ctx).await.unwrap();
    a.memory_banks.unregister("notes").await.unwrap();
    assert!(a.memory_banks.resolve("notes").await.is_err());
    let gone = chroma_get(chroma.port, "/notes", None).await;
    assert_eq!(gone["error"], "NotFoundError", "{gone}");
    let err = p_notes_b
        .1
        .insert_documents(&p_notes_b.0, vec![doc("late", &json!("Too late."))], None, &ctx)
        .await
        .unwrap_err();
    assert!(err.status_code() == 400 && err.to_string().contains("notes"), "{err}");
    assert!(p_notes_b.1.query_documents(&p_notes_b.0, "late".into(), None, &ctx).await.unwrap().chunks.is_empty());
    let listed: Vec<String> = a.memory_banks.list().await.unwrap().iter().map(|x| x.identifier().to_owned()).collect();
    assert_eq!(listed, [bank], "{listed:?}");

    // With the server gone, calls fail as unavailable (503) naming the provider, not as a 500.
    drop(chroma);
    let err = p.query_documents(&def, "lava".into(), None, &ctx).await.unwrap_err();
    assert_eq!(err.status_code(), 503, "{err}");
    assert!(err.to_string().contains("chroma"), "{err}");
}

async fn a_notes(s: &Stack) -> MemoryBankDef {
    s.memory_banks.resolve("notes").await.unwrap().0
}

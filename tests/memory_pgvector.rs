//! The `remote::pgvector` memory provider against a real `PostgreSQL` with pgvector, started by this
//! test on a free loopback port from the binaries in `$LSRS_PGVECTOR_BIN` (scripts/test.sh points
//! it at the `pgserver` wheel's `pginstall/bin`). Without that variable the test is skipped, unless
//! `CI=true`, where it fails. Chunking needs the Llama 3 tokenizer (`$LLAMA_STACK_PYTHON`) and
//! vectors the embedded all-MiniLM-L6-v2.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llama_stack_rs::config::StackRunConfig;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::stack::Stack;
use llama_stack_rs::types::memory::{MemoryBankDocument, QueryDocumentsResponse};
use llama_stack_rs::types::memory_banks::MemoryBankDef;
use serde_json::json;

const PASSWORD: &str = "pgvector-test-secret";

struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LSRS_PGVECTOR_BIN").filter(|v| !v.is_empty());
    assert!(
        dir.is_some() || std::env::var("CI").as_deref() != Ok("true"),
        "LSRS_PGVECTOR_BIN is not set: point it at a PostgreSQL bin directory whose server has pgvector \
         (scripts/test.sh sets it to the `pgserver` wheel's pginstall/bin)"
    );
    dir.map(PathBuf::from)
}

/// postgres will not run as root: then it runs as `nobody` (or `postgres`), through setpriv.
fn run_as(program: &Path) -> Command {
    let id = |args: &[&str]| {
        Command::new("id").args(args).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if id(&["-u"]).as_deref() != Some("0") {
        return Command::new(program);
    }
    let name = ["postgres", "nobody"].into_iter().find(|n| id(&["-u", n]).is_some_and(|u| !u.is_empty())).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", id(&["-u", name]).unwrap()))
        .arg(format!("--regid={}", id(&["-g", name]).unwrap()))
        .arg("--init-groups")
        .arg("--")
        .arg(program);
    cmd
}

/// Copies `<site>/pgserver/pginstall` (whose `bin` is `bin`) and its sibling libraries
/// `<site>/pgserver.libs`, when there, under `to`, keeping their relative places; returns the new
/// `bin`.
fn copy_installation(bin: &Path, to: &Path) -> PathBuf {
    let install = bin.parent().unwrap();
    let package = install.parent().unwrap();
    let site = package.parent().unwrap();
    let copy = to.join("site");
    fs::create_dir_all(copy.join(package.file_name().unwrap())).unwrap();
    let dest = copy.join(package.file_name().unwrap()).join(install.file_name().unwrap());
    assert!(Command::new("cp").arg("-a").arg(install).arg(&dest).status().unwrap().success());
    let libs = site.join("pgserver.libs");
    if libs.is_dir() {
        assert!(Command::new("cp").arg("-a").arg(&libs).arg(copy.join("pgserver.libs")).status().unwrap().success());
    }
    dest.join(bin.file_name().unwrap())
}

fn start_postgres(bin: &Path) -> Postgres {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pwfile");
    fs::write(&pwfile, PASSWORD).unwrap();
    let as_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    // The server runs as another user when the test runs as root, and that user may not reach the
    // wheel where it is installed (a virtual environment under /root): copy the installation, with
    // the libraries its RPATH names (`$ORIGIN/../../../pgserver.libs`), into the test's directory.
    let bin = if as_root { copy_installation(bin, dir.path()) } else { bin.to_path_buf() };
    let bin = bin.as_path();
    if as_root {
        let owner = ["postgres", "nobody"]
            .into_iter()
            .find(|n| Command::new("id").arg(n).stdout(Stdio::null()).status().is_ok_and(|s| s.success()))
            .unwrap();
        assert!(Command::new("chown").arg("-R").arg(owner).arg(dir.path()).status().unwrap().success());
    }
    let out = run_as(&bin.join("initdb"))
        .arg("-D")
        .arg(dir.path().join("data"))
        .args(["-U", "llama", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = fs::File::create(dir.path().join("postgres.log")).unwrap();
    let child = run_as(&bin.join("postgres"))
        .arg("-D")
        .arg(dir.path().join("data"))
        .arg("-k")
        .arg(dir.path())
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut pg = Postgres { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-d", "postgres"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return pg;
        }
        assert!(pg.child.try_wait().unwrap().is_none(), "postgres exited before it was ready");
        assert!(Instant::now() < deadline, "postgres not ready within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn stack(port: u16, dir: &Path) -> Stack {
    let yaml = format!(
        r"
version: '2'
image_name: pgvector-test
apis: [memory]
providers:
  memory:
  - provider_id: pgv
    provider_type: remote::pgvector
    config: {{host: 127.0.0.1, port: {port}, db: postgres, user: llama, password: {PASSWORD}}}
metadata_store:
  type: sqlite
  db_path: {}/registry.db
",
        dir.display()
    );
    Stack::build(StackRunConfig::from_yaml(&yaml, "test").unwrap()).await.unwrap()
}

fn doc(id: &str, text: &str) -> MemoryBankDocument {
    serde_json::from_value(json!({"document_id": id, "content": text, "metadata": {"source": id}})).unwrap()
}

fn ids(r: &QueryDocumentsResponse) -> Vec<&str> {
    r.chunks.iter().map(|c| c.document_id.as_str()).collect()
}

async fn query(s: &Stack, bank: &str, text: &str, n: usize) -> QueryDocumentsResponse {
    let (def, p) = s.memory_banks.resolve(bank).await.unwrap();
    let params = json!({"max_chunks": n}).as_object().cloned();
    p.query_documents(&def, text.into(), params, &RequestContext::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgvector_banks_documents_and_two_stacks() {
    let Some(bin) = bin_dir() else { return };
    if std::env::var_os("LLAMA_STACK_PYTHON").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "LLAMA_STACK_PYTHON is not set");
        return;
    }
    let pg = start_postgres(&bin);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = stack(pg.port, d1.path()).await;
    let ctx = RequestContext::default();

    let bank: MemoryBankDef = serde_json::from_value(json!({
        "identifier": "Docs: Animals/2024", "type": "vector", "provider_id": "pgv",
        "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 64,
    }))
    .unwrap();
    a.memory_banks.register(bank).await.unwrap();
    let (def, p) = a.memory_banks.resolve("Docs: Animals/2024").await.unwrap();
    p.insert_documents(
        &def,
        vec![
            doc("cats", "Cats purr softly and sleep in the sun most of the day."),
            doc("volcano", "A volcano erupts molten lava and ash from deep inside the earth."),
            doc("bread", "Bakers knead dough, let it rise, and bake bread in a hot oven."),
        ],
        None,
        &ctx,
    )
    .await
    .unwrap();
    let r = query(&a, "Docs: Animals/2024", "lava eruption", 2).await;
    assert_eq!(ids(&r)[0], "volcano");
    assert!(r.scores[0] > r.scores[1], "{:?}", r.scores);
    assert!(r.scores[0] <= 1.0 + 1e-6 && r.scores[0] > 0.0);

    // Re-inserting a document id replaces it.
    p.insert_documents(&def, vec![doc("cats", "Kittens chase laser pointers around the kitchen.")], None, &ctx)
        .await
        .unwrap();
    let r = query(&a, "Docs: Animals/2024", "laser pointer kitten", 5).await;
    assert_eq!(ids(&r).iter().filter(|i| **i == "cats").count(), 1);
    assert_eq!(ids(&r)[0], "cats");
    let content = serde_json::to_value(&r.chunks[0].content).unwrap();
    assert!(content.as_str().unwrap().contains("Kittens"), "{content}");

    // A failing insert (a NUL character PostgreSQL refuses in the second document) changes nothing.
    let err = p
        .insert_documents(
            &def,
            vec![doc("fish", "Fish swim in schools through coral reefs."), doc("broken", "bad\u{0}text")],
            None,
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(err.status_code() < 500 || err.to_string().contains("broken"), "{err}");
    let r = query(&a, "Docs: Animals/2024", "fish swimming in coral reefs", 10).await;
    assert!(!ids(&r).contains(&"fish"), "{:?}", ids(&r));
    assert_eq!(r.chunks.len(), 3);

    // Update of an unknown document is refused; of a known one replaces it.
    let err = p.update_documents(&def, vec![doc("ghost", "Nothing here.")], &ctx).await.unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");

    // A second stack on the same database serves the same bank and documents.
    let b = stack(pg.port, d2.path()).await;
    let listed: Vec<String> = b.memory_banks.list().await.unwrap().iter().map(|x| x.identifier().to_owned()).collect();
    assert!(listed.contains(&"Docs: Animals/2024".to_owned()), "{listed:?}");
    let r = query(&b, "Docs: Animals/2024", "bread in an oven", 1).await;
    assert_eq!(ids(&r), ["bread"]);
    let (def_b, p_b) = b.memory_banks.resolve("Docs: Animals/2024").await.unwrap();
    p_b.delete_documents(&def_b, vec!["bread".into()], &ctx).await.unwrap();
    let r = query(&a, "Docs: Animals/2024", "bread in an oven", 10).await;
    assert!(!ids(&r).contains(&"bread"), "{:?}", ids(&r));
    assert_eq!(r.chunks.len(), 2);

    // The bank's chunks sit in their own table, searched through an HNSW index on cosine distance.
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=llama password={PASSWORD} dbname=postgres", pg.port),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let rows = client.query("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'vb\\_%'", &[]).await.unwrap();
    let defs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(defs.iter().any(|d| d.contains("USING hnsw") && d.contains("vector_cosine_ops")), "{defs:?}");

    // Keyword banks are refused with a clear 4xx.
    let kw: MemoryBankDef =
        serde_json::from_value(json!({"identifier": "kw", "type": "keyword", "provider_id": "pgv"})).unwrap();
    let err = a.memory_banks.register(kw).await.unwrap_err();
    assert_eq!(err.status_code(), 400, "{err}");
    drop(pg);
}

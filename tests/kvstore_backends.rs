//! The redis and postgres kv stores against real servers this test starts on free loopback ports.
//!
//! The servers are required, not optional: a missing binary fails the test and names the Debian
//! package to install (`scripts/install-test-services.sh` installs both).

use std::error::Error as StdError;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llama_stack_rs::Error;
use llama_stack_rs::kvstore::{self, KvStore, KvStoreConfig};
use serde_json::json;

type TestResult<T = ()> = Result<T, Box<dyn StdError>>;

/// The stores give up connecting after 5 s; the rest is slack for a loaded machine.
const CONNECT_BOUND: Duration = Duration::from_secs(9);
const PG_USER: &str = "llama";
const PG_PASSWORD: &str = "kv-test-secret";

fn free_port() -> TestResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|f| f.is_file())
}

type Spawn = Box<dyn Fn() -> std::io::Result<Child>>;
type Ready = Box<dyn Fn() -> bool>;

/// A server process, stopped when the test ends however it ends (its directory goes after it).
struct Server {
    name: &'static str,
    child: Child,
    spawn: Spawn,
    ready: Ready,
    /// The signal that asks this server for a quick, clean shutdown.
    stop_signal: &'static str,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(
        name: &'static str,
        stop_signal: &'static str,
        dir: tempfile::TempDir,
        log: PathBuf,
        spawn: Spawn,
        ready: Ready,
    ) -> TestResult<Self> {
        let child = spawn()?;
        let mut server = Self { name, child, spawn, ready, stop_signal, log, _dir: dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_ready(&mut self) -> TestResult {
        let limit = Duration::from_secs(30);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "{} exited ({status}) before it was ready; its log:\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            if (self.ready)() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} not ready within {limit:?}; its log:\n{}", self.name, self.log_tail()).into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server and starts it again on the same port and directory.
    fn restart(&mut self) -> TestResult {
        self.stop();
        self.child = (self.spawn)()?;
        self.wait_ready()
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").arg(format!("-{}", self.stop_signal)).arg(self.child.id().to_string()).status();
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

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_redis() -> TestResult<(Server, u16)> {
    let bin = find_in_path("redis-server")
        .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file()))
        .ok_or(
            "redis-server not found: install the Debian package `redis-server` (scripts/install-test-services.sh does)",
        )?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let log = dir.path().join("redis.log");
    let (workdir, logfile) = (dir.path().to_path_buf(), log.clone());
    let spawn = move || {
        Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&workdir)
            .arg("--logfile")
            .arg(&logfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let server =
        Server::start("redis-server", "TERM", dir, log, Box::new(spawn), Box::new(move || redis_answers(port)))?;
    Ok((server, port))
}

fn redis_answers(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let mut reply = [0_u8; 5];
    conn.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
        && conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// Debian keeps the server binaries out of PATH, under `/usr/lib/postgresql/<major>/bin`.
fn postgres_bin_dir() -> TestResult<PathBuf> {
    // An initdb in PATH may be a link into that directory: its siblings are wanted, not the link's.
    let linked = find_in_path("initdb").and_then(|p| fs::canonicalize(p).ok());
    if let Some(dir) = linked.as_deref().and_then(Path::parent) {
        if dir.join("postgres").is_file() && dir.join("pg_isready").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            let complete = ["initdb", "postgres", "pg_isready"].iter().all(|b| bin.join(b).is_file());
            complete.then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir).ok_or_else(|| {
        "PostgreSQL server binaries (initdb, postgres) not found: install the Debian package `postgresql` \
         (scripts/install-test-services.sh does)"
            .into()
    })
}

fn id_of(args: &[&str]) -> TestResult<Option<String>> {
    let out = Command::new("id").args(args).stderr(Stdio::null()).output()?;
    Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

/// postgres refuses to run as root; then it runs as an unprivileged account, as `(uid, gid, name)`.
fn unprivileged_account() -> TestResult<Option<(String, String, String)>> {
    if id_of(&["-u"])?.as_deref() != Some("0") {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (id_of(&["-u", name])?, id_of(&["-g", name])?) {
            return Ok(Some((uid, gid, name.to_owned())));
        }
    }
    Err("running as root, and neither a `postgres` nor a `nobody` account exists to run PostgreSQL as".into())
}

fn command_as(account: Option<&(String, String, String)>, program: &Path) -> Command {
    match account {
        // setpriv replaces itself with the program (runuser and su fork), so the child's pid is the
        // server's own and the stop signal reaches it.
        Some((uid, gid, _)) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--init-groups").arg("--").arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn start_postgres() -> TestResult<(Server, u16)> {
    let bin = postgres_bin_dir()?;
    let account = unprivileged_account()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pwfile");
    fs::write(&pwfile, PG_PASSWORD)?;
    if let Some((uid, _, name)) = &account {
        let status = Command::new("chown").arg("-R").arg(uid).arg(dir.path()).status()?;
        if !status.success() {
            return Err(format!("cannot hand {} to the `{name}` account", dir.path().display()).into());
        }
    }
    // An ICU collation that sorts unlike byte order ("a" before "B"), so the test shows the store
    // orders keys by code point whatever the database's collation.
    let initdb = command_as(account.as_ref(), &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", PG_USER, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
        .args(["--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(dir.path())
        .output()?;
    if !initdb.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)).into());
    }
    let port = free_port()?;
    let log = dir.path().join("postgres.log");
    let (workdir, logfile, postgres) = (dir.path().to_path_buf(), log.clone(), bin.join("postgres"));
    let spawn = move || {
        let out = fs::OpenOptions::new().create(true).append(true).open(&logfile)?;
        command_as(account.as_ref(), &postgres)
            .arg("-D")
            .arg(workdir.join("data"))
            .arg("-k")
            .arg(&workdir)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
    };
    let isready = bin.join("pg_isready");
    let ready = move || {
        Command::new(&isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-d", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    };
    // SIGINT is postgres's fast shutdown: it ends open sessions instead of waiting for them.
    let server = Server::start("postgres", "INT", dir, log, Box::new(spawn), Box::new(ready))?;
    Ok((server, port))
}

fn redis_config(port: u16, namespace: Option<&str>) -> TestResult<KvStoreConfig> {
    Ok(serde_json::from_value(json!({"type": "redis", "host": "127.0.0.1", "port": port, "namespace": namespace}))?)
}

fn postgres_config(port: u16, namespace: Option<&str>, table: &str) -> TestResult<KvStoreConfig> {
    Ok(serde_json::from_value(json!({
        "type": "postgres", "host": "127.0.0.1", "port": port, "db": "postgres",
        "user": PG_USER, "password": PG_PASSWORD, "namespace": namespace, "table_name": table,
    }))?)
}

/// Keys come back in code-point order, and characters special to a pattern match themselves.
async fn ordering(store: &dyn KvStore) -> TestResult {
    let mut keys = vec!["o:a", "o:B", "o:é", "o:*", "o:[x]", "o:?", "o:\\", "o:%", "o:_"];
    for key in &keys {
        store.set(key, key).await?;
    }
    keys.sort_unstable();
    let got: Vec<String> = store.scan_prefix("o:").await?.into_iter().map(|(k, _)| k).collect();
    assert_eq!(got, keys);
    for literal in ["o:[", "o:*", "o:?", "o:\\", "o:%", "o:_"] {
        assert_eq!(store.scan_prefix(literal).await?.len(), 1, "prefix `{literal}` must match itself only");
    }
    assert_eq!(store.range("o:B", "o:a").await?.len(), 5, "inclusive range in code-point order");
    assert!(store.range("o:z", "o:a").await?.is_empty());
    Ok(())
}

/// What every backend must do against a live server; `config(namespace)` describes a store on it.
async fn shared_scenarios(config: impl Fn(Option<&str>) -> TestResult<KvStoreConfig>) -> TestResult {
    let plain = kvstore::open(&config(None)?).await?;
    kvstore::conformance(plain.as_ref()).await?;

    // Two handles on one server, as two server processes would hold: each sees the other's writes.
    let one = kvstore::open(&config(Some("shared"))?).await?;
    let two = kvstore::open(&config(Some("shared"))?).await?;
    one.set("agent:1", r#"{"name": "first"}"#).await?;
    assert_eq!(two.get("agent:1").await?.as_deref(), Some(r#"{"name": "first"}"#));
    two.set("agent:2", "second").await?;
    assert_eq!(one.scan_prefix("agent:").await?.len(), 2);
    two.delete("agent:1").await?;
    assert_eq!(one.get("agent:1").await?, None);

    // Namespaces keep stacks apart; on the server they are a `namespace:` key prefix.
    let x = kvstore::open(&config(Some("x"))?).await?;
    let y = kvstore::open(&config(Some("y"))?).await?;
    kvstore::conformance(x.as_ref()).await?;
    y.set("a:9", "y's").await?;
    assert_eq!(x.get("a:9").await?, None);
    assert_eq!(y.scan_prefix("a:").await?, vec![("a:9".to_owned(), "y's".to_owned())]);
    assert_eq!(x.scan_prefix("a:").await?, vec![("a:2".to_owned(), "two".to_owned())]);
    assert_eq!(plain.get("y:a:9").await?.as_deref(), Some("y's"));
    assert_eq!(plain.scan_prefix("a:").await?.len(), 1, "namespaced keys leak into the plain store's scan");

    ordering(plain.as_ref()).await?;

    // Values round-trip exactly.
    for value in ["", "line\nbreak\ttab", "ünïcødé 🦙", &"x".repeat(1 << 20)] {
        plain.set("v", value).await?;
        assert_eq!(plain.get("v").await?.as_deref(), Some(value));
    }

    // Many concurrent writers, and a scan longer than one server round trip.
    let keys: Vec<String> = (0..1200).map(|i| format!("many:{i:05}")).collect();
    futures::future::try_join_all(keys.iter().map(|k| one.set(k, k))).await?;
    let rows = two.scan_prefix("many:").await?;
    assert_eq!(rows.len(), keys.len());
    assert!(rows.iter().zip(&keys).all(|((k, v), want)| k == want && v == want));
    Ok(())
}

/// After the server goes away, an operation fails promptly with an error naming the server.
async fn fails_promptly(store: &dyn KvStore, addr: &str) -> TestResult {
    let started = Instant::now();
    let result = store.get("a:2").await;
    assert!(started.elapsed() < CONNECT_BOUND, "took {:?}", started.elapsed());
    match result {
        Err(Error::Storage(msg)) => assert!(msg.contains(addr), "`{msg}` does not name {addr}"),
        other => return Err(format!("expected a storage error once the server is gone, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn redis_store_against_a_live_server() -> TestResult {
    let (mut server, port) = start_redis()?;
    shared_scenarios(|ns| redis_config(port, ns)).await?;

    let store = kvstore::open(&redis_config(port, None)?).await?;
    server.stop();
    fails_promptly(store.as_ref(), &format!("127.0.0.1:{port}")).await?;
    // Back on its feet (empty: it keeps nothing on disk), the server is used again by the same handle.
    server.restart()?;
    store.set("after", "restart").await?;
    assert_eq!(store.get("after").await?.as_deref(), Some("restart"));
    Ok(())
}

#[tokio::test]
async fn postgres_store_against_a_live_server() -> TestResult {
    let (mut server, port) = start_postgres()?;
    shared_scenarios(|ns| postgres_config(port, ns, "llamastack_kvstore")).await?;

    // Another table name is another store.
    let other = kvstore::open(&postgres_config(port, None, "other_kv")?).await?;
    assert_eq!(other.get("a:2").await?, None);

    // A table created elsewhere, with the database's own (ICU) collation, still orders by code point.
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} dbname=postgres user={PG_USER} password={PG_PASSWORD}"),
        tokio_postgres::NoTls,
    )
    .await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE made_elsewhere (key TEXT PRIMARY KEY, value TEXT, expiration TIMESTAMP)")
        .await?;
    let elsewhere = kvstore::open(&postgres_config(port, None, "made_elsewhere")?).await?;
    ordering(elsewhere.as_ref()).await?;
    drop(client);
    connection.await??;

    // Bad settings are reported as such, naming what is wrong.
    for bad in ["kv; DROP TABLE made_elsewhere", "kv\"x", "1kv"] {
        match kvstore::open(&postgres_config(port, None, bad)?).await {
            Err(Error::Config(msg)) => assert!(msg.contains("table_name"), "{msg}"),
            other => return Err(format!("table_name `{bad}` gave {:?}", other.err()).into()),
        }
    }
    let mut wrong_password = postgres_config(port, None, "llamastack_kvstore")?;
    if let KvStoreConfig::Postgres(c) = &mut wrong_password {
        c.password = Some("not-it".into());
    }
    match kvstore::open(&wrong_password).await {
        Err(Error::Storage(msg)) => assert!(msg.contains("password authentication failed"), "{msg}"),
        other => return Err(format!("a wrong password gave {:?}", other.err()).into()),
    }

    let store = kvstore::open(&postgres_config(port, None, "llamastack_kvstore")?).await?;
    server.restart()?;
    // Every pooled connection died with the old server; the handle carries on with new ones.
    assert_eq!(store.get("a:2").await?.as_deref(), Some("two"));
    server.stop();
    fails_promptly(store.as_ref(), &format!("127.0.0.1:{port}")).await
}

/// Opening a store on a port where nothing listens, or where something listens but never
/// answers, fails within the connect timeout with an error naming host and port.
#[tokio::test]
async fn unreachable_servers_fail_fast_and_clearly() -> TestResult {
    let silent = TcpListener::bind("127.0.0.1:0")?;
    let silent_port = silent.local_addr()?.port();
    let refused_port = free_port()?;
    for port in [refused_port, silent_port] {
        let configs = [redis_config(port, None)?, postgres_config(port, None, "llamastack_kvstore")?];
        for config in configs {
            let started = Instant::now();
            let result = kvstore::open(&config).await;
            let elapsed = started.elapsed();
            assert!(elapsed < CONNECT_BOUND, "{config:?} took {elapsed:?}");
            match result {
                Err(Error::Storage(msg)) => {
                    assert!(msg.contains(&format!("127.0.0.1:{port}")), "`{msg}` does not name the address");
                }
                other => return Err(format!("{config:?} gave {:?}", other.err()).into()),
            }
        }
    }
    drop(silent);
    Ok(())
}

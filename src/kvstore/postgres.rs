//! The postgres kv store: one table that every server process pointed at the same database shares.
//!
//! A small pool rather than one multiplexed client: a single `tokio_postgres::Client` does pipeline
//! concurrent queries, but once its connection drops (server restart, an idle timeout in a proxy)
//! it is dead for good. The pool checks a connection on checkout and opens a new one in its place,
//! and keeps prepared statements per connection.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{KvStore, PostgresKvConfig};
use crate::error::{Error, Result};

/// Connecting (TCP and the start-up handshake) gives up after this long, rather than hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One statement taking this long means the server is wedged: fail the request instead.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Key-value operations are short; a few connections per process serve many concurrent requests.
const POOL_SIZE: usize = 4;

pub struct PostgresKvStore {
    pool: Pool,
    /// `host:port/db`, for error messages.
    addr: String,
    sql: Statements,
}

/// The statements, formatted once with the (validated, quoted) table name.
struct Statements {
    get: String,
    set: String,
    delete: String,
    range: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        // Keys compare byte-wise (`COLLATE "C"`) whatever the database's collation, so ranges and
        // their order agree with the other stores. The collation sits on the parameter side so a
        // column created with `COLLATE "C"` can still use its index.
        Self {
            get: format!(r#"SELECT value FROM "{table}" WHERE key = $1"#),
            set: format!(
                r#"INSERT INTO "{table}" (key, value) VALUES ($1, $2)
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expiration = NULL"#
            ),
            delete: format!(r#"DELETE FROM "{table}" WHERE key = $1"#),
            range: format!(
                r#"SELECT key, value FROM "{table}"
                   WHERE key >= ($1 COLLATE "C") AND key <= ($2 COLLATE "C") AND value IS NOT NULL
                   ORDER BY key COLLATE "C""#
            ),
        }
    }
}

/// Accepts a plain SQL identifier only: the name is spliced into statements, so nothing else may
/// reach them.
fn validate_table_name(name: &str) -> Result<&str> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        // Postgres silently truncates longer names, which would make two tables look like one.
        && name.len() <= 63;
    if valid {
        Ok(name)
    } else {
        Err(Error::config(format!(
            "postgres kv store: `table_name` must be a plain identifier (a letter or `_`, then letters, \
             digits or `_`, at most 63 characters), got `{name}`"
        )))
    }
}

/// A postgres error with everything it carries: the server's message for a database error, the
/// whole cause chain (e.g. the refused connection) otherwise.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = write!(out, ": {c}");
        cause = c.source();
    }
    out
}

/// Whether `e` says the connection itself is gone (closed, reset, or ended by a server shutting
/// down), rather than that the statement failed.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08") || *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN
        }
        None => std::error::Error::source(e).is_some_and(<dyn std::error::Error>::is::<std::io::Error>),
    }
}

/// Where a Postgres server is and who to log in as.
pub(crate) struct PgAddress<'a> {
    pub host: &'a str,
    pub port: u16,
    pub db: &'a str,
    pub user: &'a str,
    pub password: Option<&'a str>,
}

/// A small connection pool to `addr` whose waits are all bounded: the TCP connect and the
/// handshake by `CONNECT_TIMEOUT`, waiting for a free connection by `wait`. `what` names the
/// pool's user in the error.
pub(crate) fn pool(addr: &PgAddress<'_>, wait: Duration, what: &str) -> Result<Pool> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(addr.host)
        .port(addr.port)
        .dbname(addr.db)
        .user(addr.user)
        .application_name("llama-stack")
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = addr.password {
        pg.password(password);
    }
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        // The connect timeout above covers only the TCP connect; this bounds the handshake too.
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(wait))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| Error::internal(format!("{what} pool: {e}")))
}

impl PostgresKvStore {
    /// Connects, then creates the table if it is missing, so a wrong address, credentials or
    /// database fails at start-up rather than on the first request.
    pub async fn open(config: &PostgresKvConfig) -> Result<Self> {
        let table = validate_table_name(&config.table_name)?;
        let addr = format!("{}:{}/{}", config.host, config.port, config.db);
        let pool = pool(
            &PgAddress {
                host: &config.host,
                port: config.port,
                db: &config.db,
                user: &config.user,
                password: config.password.as_deref(),
            },
            QUERY_TIMEOUT,
            "postgres kv store",
        )?;
        let store = Self { pool, addr, sql: Statements::new(table) };
        store.create_table(table).await?;
        Ok(store)
    }

    async fn create_table(&self, table: &str) -> Result<()> {
        let what = format!("creating table `{table}`");
        // Looked up first: a role allowed to use an existing table may lack the right to create one.
        let quoted = format!(r#""{table}""#);
        let found = self.run(&what, "SELECT to_regclass($1) IS NOT NULL", &[&quoted]).await?;
        if found.first().and_then(|r| r.try_get::<_, bool>(0).ok()) == Some(true) {
            return Ok(());
        }
        let create = format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (key TEXT COLLATE "C" PRIMARY KEY, value TEXT, expiration TIMESTAMP)"#
        );
        let client = self.client().await?;
        match self.timed(&what, client.batch_execute(&create)).await? {
            Ok(()) => Ok(()),
            // Two processes starting at once may both create it; the loser's complaint is harmless.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) || e.code() == Some(&SqlState::DUPLICATE_TABLE) => {
                Ok(())
            }
            Err(e) => Err(self.fail(&what, &e)),
        }
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => {
                Error::Storage(format!("cannot reach the postgres kv store at {}: {}", self.addr, describe(&e)))
            }
            PoolError::Timeout(TimeoutType::Wait) => Error::Storage(format!(
                "postgres kv store at {}: no connection came free within {}s",
                self.addr,
                QUERY_TIMEOUT.as_secs()
            )),
            PoolError::Timeout(_) => Error::Storage(format!(
                "cannot reach the postgres kv store at {}: no answer within {}s",
                self.addr,
                CONNECT_TIMEOUT.as_secs()
            )),
            other => Error::Storage(format!("postgres kv store at {}: {other}", self.addr)),
        })
    }

    /// Awaits `fut` for at most `QUERY_TIMEOUT`; the postgres error, if any, is left to the caller.
    async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<Result<T, tokio_postgres::Error>> {
        tokio::time::timeout(QUERY_TIMEOUT, fut).await.map_err(|_| {
            Error::Storage(format!(
                "postgres kv store at {}: {what}: no answer within {}s",
                self.addr,
                QUERY_TIMEOUT.as_secs()
            ))
        })
    }

    fn fail(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        Error::Storage(format!("postgres kv store at {}: {what}: {}", self.addr, describe(e)))
    }

    /// Runs one statement (prepared once per connection) on a pooled connection, and once more on
    /// a fresh one if that connection turned out dead: every statement here is idempotent, and a
    /// server restart should cost no request.
    async fn run(&self, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        match self.run_once(what, sql, params).await? {
            Ok(rows) => Ok(rows),
            Err(e) if connection_lost(&e) => {
                tracing::debug!(addr = %self.addr, error = %describe(&e), "postgres kv store connection lost; retrying once");
                self.run_once(what, sql, params).await?.map_err(|e| self.fail(what, &e))
            }
            Err(e) => Err(self.fail(what, &e)),
        }
    }

    async fn run_once(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Result<Vec<Row>, tokio_postgres::Error>> {
        let client = self.client().await?;
        let query = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        self.timed(what, query).await
    }

    fn text(&self, row: &Row, column: usize) -> Result<Option<String>> {
        row.try_get(column).map_err(|e| self.fail("reading a row", &e))
    }
}

#[async_trait]
impl KvStore for PostgresKvStore {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let rows = self.run("get", &self.sql.get, &[&key]).await?;
        match rows.first() {
            Some(row) => self.text(row, 0),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        self.run("set", &self.sql.set, &[&key, &value]).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run("delete", &self.sql.delete, &[&key]).await.map(drop)
    }

    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>> {
        if start > end {
            return Ok(Vec::new());
        }
        let rows = self.run("range", &self.sql.range, &[&start, &end]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let (Some(key), Some(value)) = (self.text(row, 0)?, self.text(row, 1)?) {
                out.push((key, value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_must_be_plain_identifiers() {
        assert!(validate_table_name("llamastack_kvstore").is_ok());
        assert!(validate_table_name("_t2").is_ok());
        for bad in ["", "2t", "kv; DROP TABLE x", "a\"b", "kv-store", "é", &"t".repeat(64)] {
            let err = validate_table_name(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("table_name"), "`{bad}` was accepted");
        }
    }
}

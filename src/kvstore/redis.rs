//! The redis kv store: one plain string key per entry, so every server process pointed at the
//! same redis sees the same state.

use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, RedisError, RedisResult};
use async_trait::async_trait;

use super::KvStore;
use crate::error::{Error, Result};

/// Start-up gives up on an unreachable server after this long, rather than hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A command unanswered for this long means the server is wedged: fail the request instead.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keys asked for per SCAN step and fetched per MGET.
const BATCH: usize = 500;

pub struct RedisKvStore {
    /// Cheap to clone; reconnects by itself after the server drops the connection.
    conn: ConnectionManager,
    addr: String,
}

impl RedisKvStore {
    /// Connects to `host:port` and checks the server answers, so a wrong address fails at start-up.
    pub async fn open(host: &str, port: u16) -> Result<Self> {
        let addr = format!("{host}:{port}");
        let unreachable = |why: String| Error::Storage(format!("cannot reach the redis kv store at {addr}: {why}"));
        let client = ::redis::Client::open((host, port))
            .map_err(|e| Error::config(format!("invalid redis kv store address `{addr}`: {e}")))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            // A refused connection is retried briefly (the server may be restarting), not for long:
            // the pauses between tries start at a second and would otherwise grow to a minute.
            .set_number_of_retries(2)
            .set_max_delay(500);
        let connect = async {
            let mut conn = ConnectionManager::new_with_config(client, settings).await?;
            // A port that accepts connections but is not redis (or wants a password) shows up here.
            ::redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { conn, addr })
    }

    /// Runs `op`, once more if the connection had dropped: every operation here is idempotent, and
    /// the second try waits for the manager's new connection, so a server restart costs no request.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let first = match op(self.conn.clone()).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() => e,
            other => return other.map_err(|e| self.fail(what, &e)),
        };
        tracing::debug!(addr = %self.addr, error = %first, "redis kv store connection lost; retrying once");
        op(self.conn.clone()).await.map_err(|e| self.fail(what, &e))
    }

    fn fail(&self, what: &str, e: &RedisError) -> Error {
        Error::Storage(format!("redis kv store at {}: {what} failed: {e}", self.addr))
    }
}

/// SCANs for keys starting with what `start` and `end` have in common, keeps those in
/// `[start, end]`, then reads their values. Keys are plain strings (not a sorted set) so that a
/// `get` is one command; the price is that a range walks the matching part of the keyspace.
async fn scan_range(mut conn: ConnectionManager, start: &str, end: &str) -> RedisResult<Vec<(String, String)>> {
    let pattern = format!("{}*", glob_escape(common_prefix(start, end)));
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
            .cursor_arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut conn)
            .await?;
        // Keys that are not UTF-8 were not written by a store like this one: leave them alone.
        keys.extend(
            batch
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .filter(|k| k.as_str() >= start && k.as_str() <= end),
        );
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // SCAN may report a key twice, and in no particular order.
    keys.sort_unstable();
    keys.dedup();
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let values: Vec<Option<String>> = conn.mget(chunk).await?;
        // A key deleted since the SCAN reads as nil: it is simply no longer in the range.
        rows.extend(chunk.iter().zip(values).filter_map(|(k, v)| v.map(|v| (k.clone(), v))));
    }
    Ok(rows)
}

/// The longest common prefix of two strings, cut on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    // With no difference, the shorter string is the prefix; its byte length is a boundary in both.
    let len = a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..len]
}

/// Escapes the characters SCAN's MATCH pattern treats specially, so a prefix matches literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl KvStore for RedisKvStore {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.run("GET", |mut c| async move { c.get(key).await }).await
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        self.run("SET", |mut c| async move { c.set(key, value).await }).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run("DEL", |mut c| async move { c.del(key).await }).await
    }

    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>> {
        if start > end {
            return Ok(Vec::new());
        }
        self.run("range scan", |c| scan_range(c, start, end)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_stops_at_the_first_difference() {
        assert_eq!(common_prefix("ns:a:2", "ns:b:1"), "ns:");
        assert_eq!(common_prefix("ns:a:", "ns:a:\u{10FFFF}"), "ns:a:");
        assert_eq!(common_prefix("abc", "ab"), "ab");
        assert_eq!(common_prefix("é1", "é2"), "é");
        assert_eq!(common_prefix("é", "è"), "");
        assert_eq!(common_prefix("", "x"), "");
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
        assert_eq!(glob_escape("plain:key"), "plain:key");
    }
}

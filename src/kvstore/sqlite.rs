//! The sqlite kv store: upstream's table layout, WAL so several processes can share the file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::KvStore;
use crate::error::{Error, Result};

pub struct SqliteKvStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteKvStore {
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs_err::create_dir_all(parent)?;
            }
            let conn = Connection::open(&path)
                .map_err(|e| Error::Storage(format!("cannot open sqlite store `{}`: {e}", path.display())))?;
            // Other server processes may write at the same moment: wait for them rather than fail.
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS kvstore (key TEXT PRIMARY KEY, value TEXT, expiration TIMESTAMP)",
            )?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| Error::internal("sqlite connection lock poisoned"))?;
            f(&guard).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
    }
}

#[async_trait]
impl KvStore for SqliteKvStore {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row("SELECT value FROM kvstore WHERE key = ?1", params![key], |r| r.get(0)).optional()
        })
        .await
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT INTO kvstore (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>> {
        let keys = keys.to_vec();
        self.with(move |c| {
            let mut stmt = c.prepare_cached("SELECT value FROM kvstore WHERE key = ?1")?;
            keys.iter().map(|k| stmt.query_row(params![k], |r| r.get(0)).optional()).collect()
        })
        .await
    }

    /// One transaction: all pairs are written or none.
    async fn set_many(&self, pairs: &[(String, String)]) -> Result<()> {
        let pairs = pairs.to_vec();
        self.with(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO kvstore (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?;
                for (k, v) in &pairs {
                    stmt.execute(params![k, v])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.with(move |c| c.execute("DELETE FROM kvstore WHERE key = ?1", params![key]).map(|_| ())).await
    }

    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>> {
        let (start, end) = (start.to_owned(), end.to_owned());
        self.with(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT key, value FROM kvstore WHERE key >= ?1 AND key <= ?2 ORDER BY key")?;
            let rows = stmt.query_map(params![start, end], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_behaves_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("kv.db");
        let store = SqliteKvStore::open(&path).await.unwrap();
        crate::kvstore::tests::exercise(&store).await;
        drop(store);
        let again = SqliteKvStore::open(&path).await.unwrap();
        assert_eq!(again.get("a:2").await.unwrap().as_deref(), Some("two"));
    }
}

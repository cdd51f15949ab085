//! Key-value stores for state that must outlive a process (registrations, agents, sessions).
//! Several server processes may share one store; that is how a deployment scales out.

pub(crate) mod postgres;
mod redis;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use postgres::PostgresKvStore;
pub use redis::RedisKvStore;
pub use sqlite::SqliteKvStore;

use crate::error::{Error, Result};

#[async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<String>>;
    async fn set(&self, key: &str, value: &str) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Every `(key, value)` with `start <= key <= end`, in key order.
    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>>;

    /// The value of each key, in order. The default reads them one by one; a store that can
    /// read them in one round trip overrides it.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Writes every `(key, value)`, in order. The default writes them one by one (an error
    /// leaves the earlier ones written); a store that can write them in one transaction
    /// overrides it, and then writes all or none.
    async fn set_many(&self, pairs: &[(String, String)]) -> Result<()> {
        for (k, v) in pairs {
            self.set(k, v).await?;
        }
        Ok(())
    }

    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        // U+10FFFF sorts after any character a key can hold here.
        let end = format!("{prefix}\u{10FFFF}");
        self.range(prefix, &end).await
    }
}

fn default_sqlite_path() -> String {
    crate::config::runtime_dir().join("kvstore.db").display().to_string()
}

fn default_host() -> String {
    "localhost".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteKvConfig {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "default_sqlite_path")]
    pub db_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisKvConfig {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "RedisKvConfig::default_port")]
    pub port: u16,
}

impl RedisKvConfig {
    fn default_port() -> u16 {
        6379
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresKvConfig {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "PostgresKvConfig::default_port")]
    pub port: u16,
    #[serde(default = "PostgresKvConfig::default_db")]
    pub db: String,
    pub user: String,
    #[serde(default)]
    pub password: Option<String>,
    /// Absent from 0.0.41's config (which had no postgres store); later releases use this name
    /// and default, so a table they created is shared.
    #[serde(default = "PostgresKvConfig::default_table_name")]
    pub table_name: String,
}

impl PostgresKvConfig {
    fn default_port() -> u16 {
        5432
    }
    fn default_db() -> String {
        "llamastack".to_owned()
    }
    fn default_table_name() -> String {
        "llamastack_kvstore".to_owned()
    }
}

/// `KVStoreConfig`, discriminated on `type` (`sqlite` when absent, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum KvStoreConfig {
    #[serde(rename = "sqlite")]
    Sqlite(SqliteKvConfig),
    #[serde(rename = "redis")]
    Redis(RedisKvConfig),
    #[serde(rename = "postgres")]
    Postgres(PostgresKvConfig),
}

impl<'de> Deserialize<'de> for KvStoreConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "type")]
        enum Tagged {
            #[serde(rename = "sqlite")]
            Sqlite(SqliteKvConfig),
            #[serde(rename = "redis")]
            Redis(RedisKvConfig),
            #[serde(rename = "postgres")]
            Postgres(PostgresKvConfig),
        }
        let mut v = Value::deserialize(d)?;
        if let Value::Object(m) = &mut v {
            m.entry("type").or_insert_with(|| Value::String("sqlite".into()));
        }
        Ok(match Tagged::deserialize(v).map_err(D::Error::custom)? {
            Tagged::Sqlite(c) => Self::Sqlite(c),
            Tagged::Redis(c) => Self::Redis(c),
            Tagged::Postgres(c) => Self::Postgres(c),
        })
    }
}

/// Never shows the password (configs end up in logs and error reports).
impl std::fmt::Debug for PostgresKvConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKvConfig")
            .field("namespace", &self.namespace)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl KvStoreConfig {
    pub fn sqlite_at(path: impl Into<String>, namespace: Option<String>) -> Self {
        Self::Sqlite(SqliteKvConfig { namespace, db_path: path.into() })
    }

    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::Sqlite(c) => c.namespace.as_deref(),
            Self::Redis(c) => c.namespace.as_deref(),
            Self::Postgres(c) => c.namespace.as_deref(),
        }
    }
}

/// Opens the store a config describes. Keys are prefixed with `namespace:` when one is set, so
/// several stacks can share one database.
pub async fn open(config: &KvStoreConfig) -> Result<Arc<dyn KvStore>> {
    let store: Arc<dyn KvStore> = match config {
        KvStoreConfig::Sqlite(c) => Arc::new(SqliteKvStore::open(&crate::config::expand_home(&c.db_path)).await?),
        KvStoreConfig::Redis(c) => Arc::new(RedisKvStore::open(&c.host, c.port).await?),
        KvStoreConfig::Postgres(c) => Arc::new(PostgresKvStore::open(c).await?),
    };
    Ok(match config.namespace() {
        Some(ns) if !ns.is_empty() => Arc::new(Namespaced { inner: store, prefix: format!("{ns}:") }),
        _ => store,
    })
}

/// Prefixes every key with the namespace.
struct Namespaced {
    inner: Arc<dyn KvStore>,
    prefix: String,
}

impl Namespaced {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
}

#[async_trait]
impl KvStore for Namespaced {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.inner.get(&self.key(key)).await
    }
    async fn set(&self, key: &str, value: &str) -> Result<()> {
        self.inner.set(&self.key(key), value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.key(key)).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.inner.get_many(&keys).await
    }
    async fn set_many(&self, pairs: &[(String, String)]) -> Result<()> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (self.key(k), v.clone())).collect();
        self.inner.set_many(&pairs).await
    }
    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>> {
        let rows = self.inner.range(&self.key(start), &self.key(end)).await?;
        Ok(rows.into_iter().filter_map(|(k, v)| k.strip_prefix(&self.prefix).map(|k| (k.to_owned(), v))).collect())
    }
}

/// A process-local store, for tests and for stacks that want nothing on disk.
#[derive(Default)]
pub struct MemoryKvStore {
    map: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl MemoryKvStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<String, String>>> {
        self.map.lock().map_err(|_| Error::internal("kv store lock poisoned"))
    }
}

#[async_trait]
impl KvStore for MemoryKvStore {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock()?.get(key).cloned())
    }
    async fn set(&self, key: &str, value: &str) -> Result<()> {
        self.lock()?.insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.lock()?.remove(key);
        Ok(())
    }
    async fn range(&self, start: &str, end: &str) -> Result<Vec<(String, String)>> {
        if start > end {
            return Ok(Vec::new());
        }
        Ok(self.lock()?.range(start.to_owned()..=end.to_owned()).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// The behaviour every backend must share; the first difference comes back as an error. Public
/// (though hidden) so the tests against live redis and postgres servers run this same scenario.
#[doc(hidden)]
pub async fn conformance(store: &dyn KvStore) -> Result<()> {
    fn check<T: PartialEq + std::fmt::Debug>(step: &str, got: &T, want: &T) -> Result<()> {
        if got == want { Ok(()) } else { Err(Error::internal(format!("{step}: got {got:?}, want {want:?}"))) }
    }
    store.set("a:1", "one").await?;
    store.set("a:2", "two").await?;
    store.set("b:1", "other").await?;
    check("get after set", &store.get("a:1").await?.as_deref(), &Some("one"))?;
    store.set("a:1", "uno").await?;
    check("get after overwrite", &store.get("a:1").await?.as_deref(), &Some("uno"))?;
    let rows = store.scan_prefix("a:").await?;
    check("scan_prefix", &rows, &vec![("a:1".into(), "uno".into()), ("a:2".into(), "two".into())])?;
    check("inclusive range", &store.range("a:2", "b:1").await?.len(), &2)?;
    store.delete("a:1").await?;
    check("get after delete", &store.get("a:1").await?, &None)?;
    store.set_many(&[("c:1".into(), "x".into()), ("c:2".into(), "y".into()), ("c:1".into(), "z".into())]).await?;
    let many = store.get_many(&["c:1".into(), "missing".into(), "c:2".into()]).await?;
    check("set_many then get_many", &many, &vec![Some("z".into()), None, Some("y".into())])?;
    check("get missing", &store.get("missing").await?, &None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) async fn exercise(store: &dyn KvStore) {
        let outcome = conformance(store).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }

    #[tokio::test]
    async fn memory_store() {
        exercise(&MemoryKvStore::default()).await;
    }

    #[tokio::test]
    async fn namespaces_keep_stacks_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db").display().to_string();
        let a = open(&KvStoreConfig::sqlite_at(path.clone(), Some("a".into()))).await.unwrap();
        let b = open(&KvStoreConfig::sqlite_at(path, Some("b".into()))).await.unwrap();
        exercise(a.as_ref()).await;
        b.set("a:9", "b's").await.unwrap();
        assert_eq!(a.get("a:9").await.unwrap(), None);
        assert_eq!(b.scan_prefix("a:").await.unwrap().len(), 1);
    }

    #[test]
    fn config_defaults_to_sqlite() {
        let c: KvStoreConfig = serde_json::from_str(r#"{"db_path":"/tmp/x.db"}"#).unwrap();
        assert!(matches!(c, KvStoreConfig::Sqlite(_)));
        let c: KvStoreConfig = serde_json::from_str(r#"{"type":"postgres","user":"u"}"#).unwrap();
        assert!(matches!(c, KvStoreConfig::Postgres(ref p) if p.port == 5432 && p.db == "llamastack"));
        assert!(serde_json::from_str::<KvStoreConfig>(r#"{"type":"postgres"}"#).is_err());
    }
}

//! Routing tables for models, shields and memory banks.
//!
//! A table knows three sources of objects: what each provider reports serving, what the run
//! config registers, and what was registered at run time. Providers are asked at start, again
//! (at most every few seconds) when a lookup misses, and again by `list` when a provider's last
//! answer failed, was empty, or is old, so a backend that comes up after the stack shows its
//! objects without a request having to miss first. Run-time registrations live in the kv store and are read
//! through on every lookup that misses memory, so several server processes sharing one store
//! see each other's registrations.

mod objects;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use objects::{MemoryBankTable, ModelTable, ShieldTable};

use crate::error::{Error, Result};
use crate::kvstore::KvStore;

/// An object a table routes by its identifier.
pub trait Routable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Singular noun used in keys and messages: `model`, `shield`, `memory_bank`.
    const KIND: &'static str;
    fn identifier(&self) -> &str;
    fn provider_id(&self) -> &str;
    fn set_provider_id(&mut self, id: &str);
}

/// The provider side of a table: what it serves, and whether it takes a new object.
#[async_trait]
pub trait ObjectSource<T>: Send + Sync {
    async fn list_objects(&self, provider_id: &str) -> Result<Vec<T>>;
    async fn register_object(&self, object: &T) -> Result<()>;
}

/// How often the providers may be asked again (by a lookup that misses, or by `list` for a
/// provider whose last answer failed or was empty).
const RELIST_INTERVAL: Duration = Duration::from_secs(2);

/// How old a provider's answer may get before `list` asks it again (objects added to a backend
/// behind the stack's back, e.g. a model pulled into Ollama, appear within this time).
const LISTING_MAX_AGE: Duration = Duration::from_secs(60);

/// How long a read of the run-time registrations is reused by `list`. Lookups by id that miss
/// still read the store at once, so a registration made by another process is routable
/// immediately and appears in lists within this time.
const STORE_SNAPSHOT_TTL: Duration = Duration::from_millis(250);

/// What one provider last reported, and how that answer went.
struct Listing<T> {
    objects: Vec<T>,
    at: Option<Instant>,
    /// False until the provider answers a listing without an error.
    answered: bool,
}

impl<T> Listing<T> {
    /// Whether `list` should ask this provider again: it never answered, answered nothing
    /// (a backend that was down at start reports no objects), or answered long ago.
    fn stale(&self) -> bool {
        !self.answered || self.objects.is_empty() || self.at.is_none_or(|t| t.elapsed() >= LISTING_MAX_AGE)
    }
}

/// Which providers a re-listing asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relist {
    /// Every provider, now (start-up).
    Force,
    /// Every provider, unless they were asked less than `RELIST_INTERVAL` ago (a lookup missed).
    Miss,
    /// Only providers whose listing is stale, at most every `RELIST_INTERVAL` (`list`).
    Stale,
}

pub struct RoutingTable<T: Routable, P: Clone> {
    providers: IndexMap<String, P>,
    /// Per provider, in the providers' order.
    reported: RwLock<IndexMap<String, Listing<T>>>,
    configured: RwLock<Vec<T>>,
    last_listed: tokio::sync::Mutex<Option<Instant>>,
    snapshot: RwLock<Option<(Instant, Arc<Vec<T>>)>>,
    store: Arc<dyn KvStore>,
}

/// Key prefix of run-time registrations of one kind.
fn prefix<T: Routable>() -> String {
    format!("registry:{}:", T::KIND)
}

/// `\u{1}` separates identifier and provider id: it cannot appear in either in practice and
/// sorts before every printable character, so a prefix scan on `<id>\u{1}` finds one id.
fn key<T: Routable>(obj: &T) -> String {
    format!("{}{}\u{1}{}", prefix::<T>(), obj.identifier(), obj.provider_id())
}

fn plural<T: Routable>() -> String {
    format!("{}s", T::KIND.replace('_', " "))
}

impl<T, P> RoutingTable<T, P>
where
    T: Routable,
    P: ObjectSource<T> + Clone + Send + Sync + 'static,
{
    pub fn new(providers: IndexMap<String, P>, store: Arc<dyn KvStore>) -> Self {
        let reported = providers
            .keys()
            .map(|id| (id.clone(), Listing { objects: Vec::new(), at: None, answered: false }))
            .collect();
        Self {
            providers,
            reported: RwLock::new(reported),
            configured: RwLock::new(Vec::new()),
            last_listed: tokio::sync::Mutex::new(None),
            snapshot: RwLock::new(None),
            store,
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = &P> {
        self.providers.values()
    }

    pub fn provider_ids(&self) -> Vec<&str> {
        self.providers.keys().map(String::as_str).collect()
    }

    /// Asks every provider what it serves, then registers the run config's objects (a
    /// provider refusing one of those is a start-up error).
    pub async fn initialize(&self, configured: Vec<T>) -> Result<()> {
        self.relist(Relist::Force).await;
        let mut accepted = Vec::with_capacity(configured.len());
        for (i, mut obj) in configured.into_iter().enumerate() {
            let provider = self
                .pick_provider(&mut obj)
                .map_err(|e| Error::config(format!("run config `{}s[{i}]` (`{}`): {e}", T::KIND, obj.identifier())))?;
            provider
                .register_object(&obj)
                .await
                .map_err(|e| Error::config(format!("run config `{}s[{i}]` (`{}`): {e}", T::KIND, obj.identifier())))?;
            accepted.push(obj);
        }
        if let Ok(mut c) = self.configured.write() {
            *c = accepted;
        }
        Ok(())
    }

    /// Re-reads what providers serve (see [`Relist`] for which and how often). A provider that
    /// fails keeps what it reported before, so a passing error does not empty the list.
    async fn relist(&self, mode: Relist) {
        let mut last = self.last_listed.lock().await;
        let recent = last.is_some_and(|t| t.elapsed() < RELIST_INTERVAL);
        if mode != Relist::Force && recent {
            return;
        }
        let wanted: Vec<String> = match mode {
            Relist::Force | Relist::Miss => self.providers.keys().cloned().collect(),
            Relist::Stale => self
                .reported
                .read()
                .map(|r| r.iter().filter(|(_, l)| l.stale()).map(|(id, _)| id.clone()).collect())
                .unwrap_or_default(),
        };
        if wanted.is_empty() {
            return;
        }
        *last = Some(Instant::now());
        for id in wanted {
            let Some(p) = self.providers.get(&id) else { continue };
            let answer = p.list_objects(&id).await;
            let Ok(mut reported) = self.reported.write() else { continue };
            let Some(listing) = reported.get_mut(&id) else { continue };
            listing.at = Some(Instant::now());
            match answer {
                Ok(objs) => {
                    listing.objects = objs
                        .into_iter()
                        .map(|mut o| {
                            o.set_provider_id(&id);
                            o
                        })
                        .collect();
                    listing.answered = true;
                }
                Err(e) => {
                    listing.answered = false;
                    tracing::warn!("provider `{id}` could not list its {}: {e}", plural::<T>());
                }
            }
        }
    }

    fn in_memory(&self) -> Vec<T> {
        let mut out: Vec<T> = self
            .reported
            .read()
            .map(|r| r.values().flat_map(|l| l.objects.iter().cloned()).collect())
            .unwrap_or_default();
        if let Ok(c) = self.configured.read() {
            out.extend(c.iter().cloned());
        }
        out
    }

    fn find_in_memory(&self, identifier: &str) -> Option<T> {
        let hit = |list: &[T]| list.iter().find(|o| o.identifier() == identifier).cloned();
        self.reported
            .read()
            .ok()
            .and_then(|r| r.values().find_map(|l| hit(&l.objects)))
            .or_else(|| self.configured.read().ok().and_then(|c| hit(&c)))
    }

    async fn persisted(&self, id_prefix: &str) -> Result<Vec<T>> {
        let rows = self.store.scan_prefix(&format!("{}{id_prefix}", prefix::<T>())).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| match serde_json::from_str::<T>(&v) {
                Ok(obj) => Some(obj),
                Err(e) => {
                    tracing::warn!("ignoring unreadable registration `{k}`: {e}");
                    None
                }
            })
            .collect())
    }

    /// Everything served: provider-reported, configured, then registered at run time, with one
    /// entry per (identifier, provider) pair. Providers whose last answer failed, was empty or
    /// is old are asked again first (at most every `RELIST_INTERVAL`).
    pub async fn list(&self) -> Result<Vec<T>> {
        self.relist(Relist::Stale).await;
        self.list_known().await
    }

    /// `list` without asking any provider.
    async fn list_known(&self) -> Result<Vec<T>> {
        let mut out = self.in_memory();
        for obj in self.registered().await?.iter() {
            if !out.iter().any(|o| o.identifier() == obj.identifier() && o.provider_id() == obj.provider_id()) {
                out.push(obj.clone());
            }
        }
        Ok(out)
    }

    /// Every run-time registration, from a snapshot at most `STORE_SNAPSHOT_TTL` old.
    async fn registered(&self) -> Result<Arc<Vec<T>>> {
        if let Ok(guard) = self.snapshot.read() {
            if let Some((at, objs)) = guard.as_ref() {
                if at.elapsed() < STORE_SNAPSHOT_TTL {
                    return Ok(Arc::clone(objs));
                }
            }
        }
        let objs = Arc::new(self.persisted("").await?);
        if let Ok(mut guard) = self.snapshot.write() {
            *guard = Some((Instant::now(), Arc::clone(&objs)));
        }
        Ok(objs)
    }

    /// The first object with this identifier, or `None` (upstream answers `null`, not 404).
    pub async fn get(&self, identifier: &str) -> Result<Option<T>> {
        if let Some(o) = self.find_in_memory(identifier) {
            return Ok(Some(o));
        }
        let fresh = self.snapshot.read().ok().and_then(|g| {
            g.as_ref().filter(|(at, _)| at.elapsed() < STORE_SNAPSHOT_TTL).map(|(_, objs)| Arc::clone(objs))
        });
        if let Some(o) = fresh.and_then(|objs| objs.iter().find(|o| o.identifier() == identifier).cloned()) {
            return Ok(Some(o));
        }
        Ok(self.persisted(&format!("{identifier}\u{1}")).await?.into_iter().next())
    }

    /// The object and the provider that serves `identifier`; the error lists what is served.
    pub async fn resolve(&self, identifier: &str) -> Result<(T, P)> {
        let mut found = self.get(identifier).await?;
        if found.is_none() {
            self.relist(Relist::Miss).await;
            found = self.get(identifier).await?;
        }
        let Some(obj) = found else {
            let mut ids: Vec<String> = self.list_known().await?.iter().map(|o| o.identifier().to_owned()).collect();
            ids.dedup();
            let served = if ids.is_empty() { "none".to_owned() } else { ids.join(", ") };
            return Err(Error::invalid(format!(
                "{} `{identifier}` not registered; served {}: {served}",
                T::KIND.replace('_', " "),
                plural::<T>()
            )));
        };
        let provider = self.providers.get(obj.provider_id()).cloned().ok_or_else(|| {
            Error::invalid(format!(
                "{} `{identifier}` names provider `{}`, which this stack does not run",
                T::KIND.replace('_', " "),
                obj.provider_id()
            ))
        })?;
        Ok((obj, provider))
    }

    /// Fills in an empty provider id when there is exactly one provider; checks a given one.
    fn pick_provider(&self, obj: &mut T) -> Result<P> {
        let ids = self.provider_ids().join(", ");
        if self.providers.is_empty() {
            return Err(Error::invalid(format!(
                "cannot register {} `{}`: no provider of {} runs in this stack; configure one in the run config",
                T::KIND.replace('_', " "),
                obj.identifier(),
                plural::<T>()
            )));
        }
        if obj.provider_id().is_empty() {
            if self.providers.len() == 1 {
                if let Some(id) = self.providers.keys().next().cloned() {
                    obj.set_provider_id(&id);
                }
            } else {
                return Err(Error::invalid(format!(
                    "`provider_id` is required to register {} `{}` when several providers are configured ({ids})",
                    T::KIND.replace('_', " "),
                    obj.identifier()
                )));
            }
        }
        self.providers.get(obj.provider_id()).cloned().ok_or_else(|| {
            Error::invalid(format!(
                "provider `{}` not found for {}; configured providers: {}",
                obj.provider_id(),
                plural::<T>(),
                if ids.is_empty() { "none" } else { &ids }
            ))
        })
    }

    /// Forgets an object: its run-time registrations, what providers last reported of it, and
    /// its run-config entry (until the next start). Its provider has removed it first. Another
    /// process sharing the store stops finding it once its own memory of providers' listings is
    /// refreshed (`LISTING_MAX_AGE` at most).
    pub async fn unregister(&self, identifier: &str) -> Result<()> {
        for (key, _) in self.store.scan_prefix(&format!("{}{identifier}\u{1}", prefix::<T>())).await? {
            self.store.delete(&key).await?;
        }
        if let Ok(mut reported) = self.reported.write() {
            for listing in reported.values_mut() {
                listing.objects.retain(|o| o.identifier() != identifier);
            }
        }
        if let Ok(mut c) = self.configured.write() {
            c.retain(|o| o.identifier() != identifier);
        }
        if let Ok(mut guard) = self.snapshot.write() {
            *guard = None;
        }
        Ok(())
    }

    /// Registers an object against its provider (which may refuse) and persists it.
    pub async fn register(&self, mut obj: T) -> Result<T> {
        if obj.identifier().trim().is_empty() {
            return Err(Error::field(&["body", T::KIND, "identifier"], "must not be empty", "value_error"));
        }
        let provider = self.pick_provider(&mut obj)?;
        provider.register_object(&obj).await?;
        let value = serde_json::to_string(&obj).map_err(|e| Error::internal(e.to_string()))?;
        self.store.set(&key(&obj), &value).await?;
        if let Ok(mut guard) = self.snapshot.write() {
            *guard = None;
        }
        Ok(obj)
    }
}

#[cfg(test)]
mod tests;

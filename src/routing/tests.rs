use std::sync::Mutex;

use super::*;
use crate::kvstore::MemoryKvStore;
use crate::types::common::JsonObject;
use crate::types::models::ModelDefWithProvider;

/// A provider that serves a fixed list and refuses ids starting with `bad`; it can be made to
/// fail its listings, and counts them.
#[derive(Clone, Default)]
struct Fake {
    serves: Arc<Mutex<Vec<String>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    listings: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fake {
    fn listings(&self) -> usize {
        self.listings.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl ObjectSource<ModelDefWithProvider> for Fake {
    async fn list_objects(&self, provider_id: &str) -> Result<Vec<ModelDefWithProvider>> {
        self.listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Unavailable { provider: provider_id.into(), message: "connection refused".into() });
        }
        let serves = self.serves.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(serves.into_iter().map(|id| model(&id, provider_id)).collect())
    }
    async fn register_object(&self, object: &ModelDefWithProvider) -> Result<()> {
        if object.identifier.starts_with("bad") {
            return Err(Error::invalid(format!("cannot serve `{}`", object.identifier)));
        }
        Ok(())
    }
}

fn model(id: &str, provider: &str) -> ModelDefWithProvider {
    ModelDefWithProvider {
        identifier: id.into(),
        llama_model: id.into(),
        metadata: JsonObject::new(),
        provider_id: provider.into(),
    }
}

fn table(ids: &[&str], store: Arc<dyn KvStore>) -> (RoutingTable<ModelDefWithProvider, Fake>, Fake) {
    let fake = Fake::default();
    let providers = ids.iter().map(|id| ((*id).to_owned(), fake.clone())).collect();
    (RoutingTable::new(providers, store), fake)
}

#[tokio::test]
async fn lists_reported_configured_and_registered() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, fake) = table(&["p1"], store.clone());
    fake.serves.lock().unwrap().push("m1".into());
    t.initialize(vec![model("m2", "")]).await.unwrap();
    t.register(model("m3", "")).await.unwrap();
    let ids: Vec<_> = t.list().await.unwrap().into_iter().map(|m| (m.identifier, m.provider_id)).collect();
    assert_eq!(ids, [("m1".into(), "p1".into()), ("m2".into(), "p1".into()), ("m3".into(), "p1".into())]);
    assert!(t.get("nope").await.unwrap().is_none());
    assert_eq!(t.resolve("m3").await.unwrap().0.provider_id, "p1");

    // A second table on the same store (another process) sees the registration.
    let (other, _) = table(&["p1"], store);
    assert!(other.get("m3").await.unwrap().is_some());
}

#[tokio::test]
async fn errors_name_ids_and_providers() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, fake) = table(&["a", "b"], store);
    fake.serves.lock().unwrap().push("m1".into());
    t.initialize(vec![]).await.unwrap();
    let e = t.register(model("x", "")).await.unwrap_err().to_string();
    assert!(e.contains("provider_id") && e.contains("a, b"), "{e}");
    let e = t.register(model("x", "zzz")).await.unwrap_err().to_string();
    assert!(e.contains("provider `zzz` not found") && e.contains("a, b"), "{e}");
    let e = t.register(model("bad1", "a")).await.unwrap_err().to_string();
    assert!(e.contains("cannot serve `bad1`"), "{e}");
    let e = t.resolve("ghost").await.err().unwrap().to_string();
    assert!(e.contains("model `ghost` not registered") && e.contains("m1"), "{e}");
}

#[tokio::test]
async fn a_miss_asks_providers_again() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, fake) = table(&["p"], store);
    t.initialize(vec![]).await.unwrap();
    fake.serves.lock().unwrap().push("late".into());
    // Forget when we last listed so the rate limit does not hide the new model.
    *t.last_listed.lock().await = None;
    assert!(t.resolve("late").await.is_ok());
}

#[tokio::test]
async fn configured_refusal_is_a_startup_error() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, _) = table(&["p"], store);
    let e = t.initialize(vec![model("bad", "p")]).await.unwrap_err().to_string();
    assert!(e.contains("models[0]") && e.contains("cannot serve"), "{e}");
}

#[tokio::test]
async fn list_asks_again_a_provider_that_had_nothing_or_failed() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, fake) = table(&["p"], store);
    fake.down.store(true, std::sync::atomic::Ordering::SeqCst);
    t.initialize(vec![]).await.unwrap();
    assert!(t.list().await.unwrap().is_empty());
    let asked = fake.listings();
    // Within the interval the failed provider is not asked again.
    assert!(t.list().await.unwrap().is_empty());
    assert_eq!(fake.listings(), asked);

    // The backend comes up; once the interval has passed, `list` alone shows its models.
    fake.down.store(false, std::sync::atomic::Ordering::SeqCst);
    fake.serves.lock().unwrap().push("late".into());
    *t.last_listed.lock().await = None;
    let ids: Vec<_> = t.list().await.unwrap().into_iter().map(|m| m.identifier).collect();
    assert_eq!(ids, ["late"]);

    // A provider that answered recently is not asked again by `list`.
    *t.last_listed.lock().await = None;
    let asked = fake.listings();
    assert_eq!(t.list().await.unwrap().len(), 1);
    assert_eq!(fake.listings(), asked);

    // A failing re-listing keeps what the provider reported before.
    fake.down.store(true, std::sync::atomic::Ordering::SeqCst);
    *t.last_listed.lock().await = None;
    t.relist(Relist::Force).await;
    assert_eq!(t.list().await.unwrap().len(), 1);
    assert!(t.resolve("late").await.is_ok());
}

#[tokio::test]
async fn registering_without_any_provider_says_so() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let (t, _) = table(&[], store);
    t.initialize(vec![]).await.unwrap();
    for provider in ["", "p1"] {
        let e = t.register(model("x", provider)).await.unwrap_err().to_string();
        assert!(e.contains("no provider of models runs in this stack"), "{e}");
    }
}

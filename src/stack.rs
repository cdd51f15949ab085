//! The resolver: turns a run config into running providers, routing tables and the set of APIs
//! served, in dependency order (inference, safety, memory, telemetry, agents).

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::config::{Api, StackRunConfig};
use crate::error::{Error, Result};
use crate::kvstore::{self, KvStore, KvStoreConfig};
use crate::providers::ProviderImpl;
use crate::providers::inference::InferenceProvider;
use crate::providers::memory::MemoryProvider;
use crate::providers::registry::{self, BuildArgs, Deps, ProviderSpec};
use crate::providers::safety::SafetyProvider;
use crate::providers::telemetry::TelemetryProvider;
use crate::routing::{MemoryBankTable, ModelTable, ShieldTable};
use crate::types::common::JsonObject;

/// Order in which provider APIs are built: each only depends on ones before it.
const BUILD_ORDER: [Api; 5] = [Api::Inference, Api::Safety, Api::Memory, Api::Telemetry, Api::Agents];

/// A running stack: everything the HTTP server and the Python bridge dispatch to.
pub struct Stack {
    pub config: StackRunConfig,
    pub served: Vec<Api>,
    pub models: Arc<ModelTable>,
    pub shields: Arc<ShieldTable>,
    pub memory_banks: Arc<MemoryBankTable>,
    pub telemetry: Option<Arc<dyn TelemetryProvider>>,
    /// The agents provider, when the run config has one.
    pub agents: Option<Arc<crate::agents::Agents>>,
    /// Spans and events of every request go through it to `telemetry` (disabled without one).
    pub tracer: crate::telemetry::Tracer,
    /// APIs whose configured provider cannot run in this build, with the reason.
    pub unavailable: HashMap<Api, String>,
    store: Arc<dyn KvStore>,
}

impl Stack {
    /// Builds every configured provider and routing table. Configuration errors name the field.
    pub async fn build(mut config: StackRunConfig) -> Result<Self> {
        registry::check_run_config(&mut config)?;
        let served = config.served_apis();
        for api in &served {
            if Api::PROVIDABLE.contains(api) && config.providers_for(*api).is_empty() {
                return Err(Error::config(format!(
                    "the `{api}` API is listed in `apis` but `providers.{api}` configures no provider"
                )));
            }
        }
        let store = open_store(&config).await?;

        // Check every provider before building any, so a typo is reported before slow work.
        let mut checked: IndexMap<Api, Vec<(String, ProviderSpec, JsonObject)>> = IndexMap::new();
        for api in BUILD_ORDER {
            for (i, p) in config.providers_for(api).iter().enumerate() {
                let (spec, cfg) = registry::check(api, i, p)?;
                checked.entry(api).or_default().push((p.provider_id.clone(), spec, cfg));
            }
        }

        // Build API by API; each routing table exists as soon as its providers do, so the
        // providers of later APIs get it in their `Deps`.
        let mut unavailable = HashMap::new();
        let mut deps = Deps { models: None, shields: None, memory_banks: None, telemetry: None, store: store.clone() };
        let mut inference: IndexMap<String, Arc<dyn InferenceProvider>> = IndexMap::new();
        let mut safety: IndexMap<String, Arc<dyn SafetyProvider>> = IndexMap::new();
        let mut memory: IndexMap<String, Arc<dyn MemoryProvider>> = IndexMap::new();
        let mut agents: Option<Arc<crate::agents::Agents>> = None;
        for api in BUILD_ORDER {
            let mut providers_built = 0usize;
            for (provider_id, spec, cfg) in checked.shift_remove(&api).unwrap_or_default() {
                let Some(build_fn) = spec.build else {
                    let why = format!(
                        "provider `{provider_id}` (type `{}`) of the {api} API is not available in this build: {}",
                        spec.provider_type, spec.note
                    );
                    tracing::warn!("{why}");
                    unavailable.entry(api).or_insert(why);
                    continue;
                };
                let args = BuildArgs { provider_id: provider_id.clone(), config: cfg, deps: deps.clone() };
                providers_built += 1;
                match build_fn(args).await? {
                    ProviderImpl::Inference(p) => {
                        inference.insert(provider_id, p);
                    }
                    ProviderImpl::Safety(p) => {
                        safety.insert(provider_id, p);
                    }
                    ProviderImpl::Memory(p) => {
                        memory.insert(provider_id, p);
                    }
                    ProviderImpl::Telemetry(p) => {
                        // Telemetry is not routed: upstream kept the last one; we keep the first
                        // and say so, since silently dropping one is worse.
                        if deps.telemetry.is_some() {
                            tracing::warn!("telemetry provider `{provider_id}` ignored: only the first one is used");
                        } else {
                            deps.telemetry = Some(p);
                        }
                    }
                    ProviderImpl::Agents(p) => {
                        // The agents API is not routed either: the first provider serves it.
                        if agents.is_some() {
                            tracing::warn!("agents provider `{provider_id}` ignored: only the first one is used");
                        } else {
                            agents = Some(p);
                        }
                    }
                }
            }
            // An API is only unavailable when none of its providers can run.
            if providers_built > 0 {
                unavailable.remove(&api);
            }
            match api {
                Api::Inference => {
                    let table = Arc::new(ModelTable::new(std::mem::take(&mut inference), store.clone()));
                    table.initialize(config.models.clone()).await?;
                    deps.models = Some(table);
                }
                Api::Safety => {
                    let table = Arc::new(ShieldTable::new(std::mem::take(&mut safety), store.clone()));
                    table.initialize(config.shields.clone()).await?;
                    deps.shields = Some(table);
                }
                Api::Memory => {
                    let table = Arc::new(MemoryBankTable::new(std::mem::take(&mut memory), store.clone()));
                    table.initialize(config.memory_banks.clone()).await?;
                    deps.memory_banks = Some(table);
                }
                _ => {}
            }
        }
        let (Some(models), Some(shields), Some(memory_banks)) = (deps.models, deps.shields, deps.memory_banks) else {
            return Err(Error::internal("the build order lost a routing table"));
        };
        let telemetry = deps.telemetry;
        let tracer = telemetry.clone().map_or_else(crate::telemetry::Tracer::disabled, crate::telemetry::Tracer::start);

        Ok(Self { config, served, models, shields, memory_banks, telemetry, agents, tracer, unavailable, store })
    }

    pub fn serves(&self, api: Api) -> bool {
        self.served.contains(&api)
    }

    /// The error for a request to an API this stack does not serve.
    pub fn not_served(&self, api: Api) -> Error {
        if let Some(why) = self.unavailable.get(&api) {
            return Error::not_implemented(why.clone());
        }
        Error::not_implemented(format!(
            "the {api} API is not served by this stack; add a provider under `providers.{}` in the run config",
            api.routed_by().unwrap_or(api)
        ))
    }

    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// Lets providers close connections and background work; called once at shutdown. The
    /// kv stores write through, so there is nothing of theirs to flush.
    pub async fn shutdown(&self) {
        self.tracer.flush().await;
        for p in self.models.providers() {
            p.shutdown().await;
        }
    }
}

/// The store for registrations: the configured one, else a sqlite file per image name.
async fn open_store(config: &StackRunConfig) -> Result<Arc<dyn KvStore>> {
    let cfg = config.metadata_store.clone().unwrap_or_else(|| {
        let path = crate::config::runtime_dir().join(&config.image_name).join("registry.db");
        KvStoreConfig::sqlite_at(path.display().to_string(), None)
    });
    kvstore::open(&cfg).await.map_err(|e| Error::config(format!("`metadata_store`: {e}")))
}

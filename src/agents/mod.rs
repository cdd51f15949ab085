//! The agents API: the turn executor, its built-in tools and the persistence of agents,
//! sessions and turns.
//!
//! [`Agents`] is the `meta-reference` agents provider. It keeps nothing about agents in memory:
//! every call reads the store, so several processes sharing one store serve the same agents.
//! Turns of one session run one after another (a per-session lock in this process); turns of
//! different sessions run at once.

mod executor;
pub mod persistence;
mod retrieval;
pub mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::kvstore::{self, KvStoreConfig};
use crate::providers::registry::BuildArgs;
use crate::providers::{ProviderImpl, RequestContext, typed_config};
use crate::routing::{MemoryBankTable, ModelTable, ShieldTable};
use crate::types::agents::{
    AgentConfig, AgentTool, AgentTurnResponseEventPayload, AgentTurnResponseStreamChunk, CreateAgentTurnRequest,
    MemoryQueryGeneratorConfig, Session, Step, Turn,
};
use crate::types::common::Timestamp;
use persistence::{AgentStore, SessionInfo, check_id};
use tools::ToolSettings;

/// The streamed events of one turn.
pub type TurnStream = BoxStream<'static, Result<AgentTurnResponseStreamChunk>>;

#[derive(Debug, Deserialize)]
struct AgentsConfig {
    #[serde(default)]
    persistence_store: Option<KvStoreConfig>,
}

/// Builds the `meta-reference` agents provider from its config and the tables built before it.
pub fn build(args: BuildArgs) -> futures::future::BoxFuture<'static, Result<ProviderImpl>> {
    Box::pin(async move {
        let at = format!("providers.agents[{}].config", args.provider_id);
        let cfg: AgentsConfig = typed_config(&args.config, &at)?;
        let store_cfg = cfg.persistence_store.unwrap_or_else(|| {
            let path = crate::config::runtime_dir().join("agents_store.db");
            KvStoreConfig::sqlite_at(path.display().to_string(), None)
        });
        let kv =
            kvstore::open(&store_cfg).await.map_err(|e| Error::config(format!("`{at}.persistence_store`: {e}")))?;
        let tool_settings = ToolSettings::from_config(&args.config)?;
        let deps = args.deps;
        let (Some(models), Some(shields), Some(memory_banks)) = (deps.models, deps.shields, deps.memory_banks) else {
            return Err(Error::internal("the agents provider was built before the APIs it depends on"));
        };
        let work_root = std::env::temp_dir().join(format!("llama-stack-agents-{}", std::process::id()));
        Ok(ProviderImpl::Agents(Arc::new(Agents {
            store: AgentStore::new(kv),
            models,
            shields,
            memory_banks,
            tool_settings,
            locks: SessionLocks::default(),
            work_root,
        })))
    })
}

pub struct Agents {
    store: AgentStore,
    models: Arc<ModelTable>,
    shields: Arc<ShieldTable>,
    memory_banks: Arc<MemoryBankTable>,
    tool_settings: ToolSettings,
    locks: SessionLocks,
    /// Per-session working directories of the tools live below this.
    work_root: PathBuf,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Agents {
    /// Checks the config against what the stack serves (naming every missing model, shield and
    /// memory bank, and every tool that cannot work), then stores it.
    pub async fn create_agent(&self, config: AgentConfig) -> Result<String> {
        self.check_config(&config).await?;
        let agent_id = new_id();
        self.store.put_agent(&agent_id, &config).await?;
        Ok(agent_id)
    }

    async fn check_config(&self, config: &AgentConfig) -> Result<()> {
        if config.max_infer_iters < 0 {
            return Err(Error::field(
                &["body", "agent_config", "max_infer_iters"],
                "must be zero or more",
                "value_error",
            ));
        }
        let mut missing = Vec::new();
        if self.models.resolve(&config.model).await.is_err() {
            missing.push(format!("model `{}`", config.model));
        }
        let mut shields: Vec<&String> = config.input_shields.iter().chain(&config.output_shields).collect();
        for tool in &config.tools {
            shields.extend(tool.input_shields().iter().chain(tool.output_shields()));
        }
        let mut seen = std::collections::HashSet::new();
        for shield in shields {
            if seen.insert(shield.as_str()) && self.shields.resolve(shield).await.is_err() {
                missing.push(format!("shield `{shield}`"));
            }
        }
        for (i, tool) in config.tools.iter().enumerate() {
            if let AgentTool::Memory(mem) = tool {
                for bank in &mem.memory_bank_configs {
                    if self.memory_banks.resolve(bank.bank_id()).await.is_err() {
                        missing.push(format!("memory bank `{}`", bank.bank_id()));
                    }
                }
                match &mem.query_generator_config {
                    MemoryQueryGeneratorConfig::Llm(llm) => {
                        if llm.model != config.model && self.models.resolve(&llm.model).await.is_err() {
                            missing.push(format!("model `{}` (the query generator of tools[{i}])", llm.model));
                        }
                    }
                    MemoryQueryGeneratorConfig::Custom(_) => {
                        return Err(Error::not_implemented(format!(
                            "`agent_config.tools[{i}].query_generator_config`: the `custom` query generator has no \
                             implementation; use `default` or `llm`"
                        )));
                    }
                    MemoryQueryGeneratorConfig::Default(_) => {}
                }
                if mem.max_chunks < 0 || mem.max_tokens_in_context < 0 {
                    return Err(Error::invalid(format!(
                        "`agent_config.tools[{i}]`: `max_chunks` and `max_tokens_in_context` must be zero or more"
                    )));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "the agent config names what this stack does not serve: {}",
                missing.join(", ")
            )));
        }
        for tool in &config.tools {
            tools::builtin(tool, &self.tool_settings)?;
        }
        Ok(())
    }

    async fn agent(&self, agent_id: &str) -> Result<AgentConfig> {
        self.store.agent(agent_id).await?.ok_or_else(|| Error::invalid(format!("agent `{agent_id}` not found")))
    }

    async fn session_info(&self, agent_id: &str, session_id: &str) -> Result<SessionInfo> {
        self.store
            .session(agent_id, session_id)
            .await?
            .ok_or_else(|| Error::invalid(format!("session `{session_id}` not found for agent `{agent_id}`")))
    }

    /// Deletes the agent with its sessions and turns.
    pub async fn delete_agent(&self, agent_id: &str) -> Result<()> {
        self.agent(agent_id).await?;
        for session_id in self.store.delete_agent(agent_id).await? {
            self.remove_work_dir(&session_id).await;
        }
        Ok(())
    }

    /// Removes the files the session's tools and attachments left (kept by this process only).
    async fn remove_work_dir(&self, session_id: &str) {
        let dir = self.work_root.join(session_id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove `{}`: {e}", dir.display());
            }
        }
    }

    pub async fn create_session(&self, agent_id: &str, session_name: &str) -> Result<String> {
        self.agent(agent_id).await?;
        let session = SessionInfo {
            session_id: new_id(),
            session_name: session_name.to_owned(),
            memory_bank_id: None,
            memory_bank: None,
            started_at: Timestamp::now(),
        };
        self.store.put_session(agent_id, &session).await?;
        Ok(session.session_id)
    }

    /// The session with its turns, oldest first; `turn_ids` keeps only those (each must exist).
    pub async fn get_session(&self, agent_id: &str, session_id: &str, turn_ids: Option<&[String]>) -> Result<Session> {
        self.agent(agent_id).await?;
        let info = self.session_info(agent_id, session_id).await?;
        let mut turns = self.store.turns(agent_id, session_id).await?;
        if let Some(ids) = turn_ids {
            let unknown: Vec<&str> =
                ids.iter().filter(|id| !turns.iter().any(|t| &t.turn_id == *id)).map(String::as_str).collect();
            if !unknown.is_empty() {
                return Err(Error::invalid(format!(
                    "turn `{}` not found in session `{session_id}`",
                    unknown.join("`, `")
                )));
            }
            turns.retain(|t| ids.contains(&t.turn_id));
        }
        Ok(Session {
            session_id: info.session_id,
            session_name: info.session_name,
            turns,
            started_at: info.started_at,
            memory_bank: info.memory_bank,
        })
    }

    pub async fn delete_session(&self, agent_id: &str, session_id: &str) -> Result<()> {
        self.agent(agent_id).await?;
        self.session_info(agent_id, session_id).await?;
        self.store.delete_session(agent_id, session_id).await?;
        self.remove_work_dir(session_id).await;
        Ok(())
    }

    pub async fn get_turn(&self, agent_id: &str, turn_id: &str) -> Result<Turn> {
        self.agent(agent_id).await?;
        self.store
            .turn(agent_id, turn_id)
            .await?
            .ok_or_else(|| Error::invalid(format!("turn `{turn_id}` not found for agent `{agent_id}`")))
    }

    pub async fn get_step(&self, agent_id: &str, turn_id: &str, step_id: &str) -> Result<Step> {
        let turn = self.get_turn(agent_id, turn_id).await?;
        turn.steps
            .into_iter()
            .find(|s| s.step_id() == step_id)
            .ok_or_else(|| Error::invalid(format!("step `{step_id}` not found in turn `{turn_id}`")))
    }

    /// Checks the request (agent, session, messages) and starts the turn. The turn runs to its
    /// end and is stored even if the caller stops reading the events.
    pub async fn create_turn(
        self: &Arc<Self>,
        request: CreateAgentTurnRequest,
        ctx: RequestContext,
    ) -> Result<TurnStream> {
        check_id("agent", &request.agent_id)?;
        let config = self.agent(&request.agent_id).await?;
        let session = self.session_info(&request.agent_id, &request.session_id).await?;
        if request.messages.is_empty() {
            return Err(Error::field(&["body", "messages"], "must hold at least one message", "value_error"));
        }
        let attachments = request.attachments.as_deref().unwrap_or_default();
        for (i, a) in attachments.iter().enumerate() {
            if retrieval::names_a_server_file(a) {
                return Err(Error::invalid(format!(
                    "`attachments[{i}]`: a `file://` URL names a file on the server, which a client may not read; \
                     send the content inline or as a data: URL"
                )));
            }
        }
        if !attachments.is_empty() && !executor::handles_attachments(&config, self.memory_banks.provider_ids().len()) {
            return Err(Error::invalid(
                "this turn has attachments, but the agent has no memory tool or code_interpreter to read them and \
                 the stack runs no memory provider",
            ));
        }
        let (tx, rx) = mpsc::channel(64);
        let job = executor::TurnJob { agents: Arc::clone(self), config, session, request, ctx };
        tokio::spawn(executor::run(job, tx));
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }

    /// Runs a turn and answers the finished `Turn` (the non-streamed form).
    pub async fn create_turn_and_wait(
        self: &Arc<Self>,
        request: CreateAgentTurnRequest,
        ctx: RequestContext,
    ) -> Result<Turn> {
        let mut stream = self.create_turn(request, ctx).await?;
        while let Some(chunk) = stream.next().await {
            if let AgentTurnResponseEventPayload::TurnComplete(done) = chunk?.event.payload {
                return Ok(done.turn);
            }
        }
        Err(Error::internal("the turn ended without completing"))
    }
}

/// One lock per session, held while a turn of that session runs. Entries go away with their
/// last holder.
#[derive(Default)]
struct SessionLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct SessionGuard<'a> {
    locks: &'a SessionLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl SessionLocks {
    async fn lock(&self, key: &str) -> SessionGuard<'_> {
        let lock = match self.map.lock() {
            Ok(mut map) => Arc::clone(map.entry(key.to_owned()).or_default()),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        let guard = lock.lock_owned().await;
        SessionGuard { locks: self, key: key.to_owned(), guard: Some(guard) }
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Ok(mut map) = self.locks.map.lock() {
            if map.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
                map.remove(&self.key);
            }
        }
    }
}

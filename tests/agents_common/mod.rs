//! Test doubles for the agents tests: the crate's scripted inference provider (text and tool
//! calls, `llama_stack_rs::testing`), a safety provider with word-triggered shields, and an
//! in-memory memory provider with word-overlap retrieval; plus the agents provider built on them.
#![allow(dead_code, reason = "each test binary uses its own subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use indexmap::IndexMap;
use llama_stack_rs::agents::Agents;
use llama_stack_rs::error::Result;
use llama_stack_rs::kvstore::{KvStore, MemoryKvStore};
use llama_stack_rs::providers::inference::InferenceProvider;
use llama_stack_rs::providers::memory::MemoryProvider;
use llama_stack_rs::providers::registry::{BuildArgs, Deps};
use llama_stack_rs::providers::safety::SafetyProvider;
use llama_stack_rs::providers::{ProviderImpl, RequestContext};
use llama_stack_rs::routing::{MemoryBankTable, ShieldTable};
use llama_stack_rs::types::agents::{AgentTurnResponseEventPayload, AgentTurnResponseStreamChunk};
use llama_stack_rs::types::common::{InterleavedTextMedia, JsonObject, Message};
use llama_stack_rs::types::memory::{Chunk, DocumentContent, MemoryBankDocument, QueryDocumentsResponse};
use llama_stack_rs::types::memory_banks::MemoryBankDef;
use llama_stack_rs::types::safety::{RunShieldResponse, SafetyViolation, ViolationLevel};
use llama_stack_rs::types::shields::{ShieldDef, ShieldDefWithProvider};
use serde_json::{Value, json};

pub use llama_stack_rs::testing::{Reply, SCRIPTED_MODEL as MODEL, ScriptedInference as Scripted, call, say};

/// Shields: `no_bombs` stops any conversation whose last message mentions "bomb";
/// `cautious` only warns about it. Every run is recorded as (shield, last message text).
#[derive(Default)]
pub struct WordShields {
    pub runs: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl SafetyProvider for WordShields {
    async fn list_shields(&self) -> Result<Vec<ShieldDef>> {
        Ok(["no_bombs", "cautious"]
            .iter()
            .map(|s| ShieldDef { identifier: (*s).into(), shield_type: (*s).into(), params: JsonObject::new() })
            .collect())
    }
    async fn register_shield(&self, _shield: &ShieldDefWithProvider) -> Result<()> {
        Ok(())
    }
    async fn run_shield(
        &self,
        shield: &ShieldDefWithProvider,
        messages: Vec<Message>,
        _params: JsonObject,
        _ctx: &RequestContext,
    ) -> Result<RunShieldResponse> {
        let last = messages.last().map(|m| m.content().as_text(" ")).unwrap_or_default();
        self.runs.lock().unwrap().push((shield.identifier.clone(), last.clone()));
        if !last.contains("bomb") {
            return Ok(RunShieldResponse { violation: None });
        }
        let level = if shield.identifier == "cautious" { ViolationLevel::Warn } else { ViolationLevel::Error };
        let mut metadata = JsonObject::new();
        metadata.insert("violation_type".into(), json!("S9"));
        Ok(RunShieldResponse {
            violation: Some(SafetyViolation {
                violation_level: level,
                user_message: Some("I can't answer that. Can I help with something else?".into()),
                metadata,
            }),
        })
    }
}

/// Banks in memory; a document is one chunk; a query scores chunks by shared words.
#[derive(Default)]
pub struct WordMemory {
    pub banks: Mutex<HashMap<String, Vec<(String, String)>>>,
    pub queries: Mutex<Vec<(String, String, Option<JsonObject>)>>,
}

#[async_trait]
impl MemoryProvider for WordMemory {
    async fn list_memory_banks(&self) -> Result<Vec<MemoryBankDef>> {
        Ok(Vec::new())
    }
    async fn register_memory_bank(&self, bank: &MemoryBankDef) -> Result<()> {
        self.banks.lock().unwrap().entry(bank.identifier().to_owned()).or_default();
        Ok(())
    }
    async fn insert_documents(
        &self,
        bank: &MemoryBankDef,
        documents: Vec<MemoryBankDocument>,
        _ttl_seconds: Option<i64>,
        _ctx: &RequestContext,
    ) -> Result<()> {
        let mut banks = self.banks.lock().unwrap();
        let docs = banks.entry(bank.identifier().to_owned()).or_default();
        for d in documents {
            let text = match d.content {
                DocumentContent::Media(m) => m.as_text(" "),
                DocumentContent::Url(u) => u.uri,
            };
            docs.push((d.document_id, text));
        }
        Ok(())
    }
    async fn query_documents(
        &self,
        bank: &MemoryBankDef,
        query: InterleavedTextMedia,
        params: Option<JsonObject>,
        _ctx: &RequestContext,
    ) -> Result<QueryDocumentsResponse> {
        let q = query.as_text(" ").to_lowercase();
        self.queries.lock().unwrap().push((bank.identifier().to_owned(), q.clone(), params));
        let words: Vec<&str> = q.split_whitespace().collect();
        let banks = self.banks.lock().unwrap();
        let mut hits: Vec<(f64, Chunk)> = banks
            .get(bank.identifier())
            .into_iter()
            .flatten()
            .filter_map(|(id, text)| {
                let lower = text.to_lowercase();
                #[allow(clippy::cast_precision_loss, reason = "small counts")]
                let score = words.iter().filter(|w| w.len() > 3 && lower.contains(*w)).count() as f64;
                (score > 0.0).then(|| {
                    let token_count = i64::try_from(text.split_whitespace().count()).unwrap();
                    (score, Chunk { content: text.clone().into(), token_count, document_id: id.clone() })
                })
            })
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(QueryDocumentsResponse {
            scores: hits.iter().map(|h| h.0).collect(),
            chunks: hits.into_iter().map(|h| h.1).collect(),
        })
    }
}

pub struct Rig {
    pub agents: Arc<Agents>,
    pub model: Arc<Scripted>,
    pub shields: Arc<WordShields>,
    pub memory: Arc<WordMemory>,
    pub banks: Arc<MemoryBankTable>,
    pub dir: tempfile::TempDir,
}

/// The agents provider over the three doubles, with its state in a sqlite file.
pub async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.db").display().to_string();
    rig_with_store(dir, json!({"type": "sqlite", "db_path": path})).await
}

pub async fn rig_with_store(dir: tempfile::TempDir, persistence_store: Value) -> Rig {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKvStore::default());
    let model = Arc::new(Scripted::default());
    let shields = Arc::new(WordShields::default());
    let memory = Arc::new(WordMemory::default());
    let safety: IndexMap<String, Arc<dyn SafetyProvider>> =
        IndexMap::from([("words".to_owned(), Arc::clone(&shields) as Arc<dyn SafetyProvider>)]);
    let mem: IndexMap<String, Arc<dyn MemoryProvider>> =
        IndexMap::from([("mem".to_owned(), Arc::clone(&memory) as Arc<dyn MemoryProvider>)]);
    let models =
        llama_stack_rs::testing::model_table("scripted", Arc::clone(&model) as Arc<dyn InferenceProvider>).await;
    let shield_table = Arc::new(ShieldTable::new(safety, Arc::clone(&store)));
    shield_table.initialize(Vec::new()).await.unwrap();
    let banks = Arc::new(MemoryBankTable::new(mem, Arc::clone(&store)));
    banks.initialize(Vec::new()).await.unwrap();
    let deps = Deps {
        models: Some(models),
        shields: Some(shield_table),
        memory_banks: Some(Arc::clone(&banks)),
        telemetry: None,
        store,
    };
    let config: JsonObject = serde_json::from_value(json!({"persistence_store": persistence_store})).unwrap();
    let built = llama_stack_rs::agents::build(BuildArgs { provider_id: "agents".into(), config, deps }).await.unwrap();
    let ProviderImpl::Agents(agents) = built else { panic!("not an agents provider") };
    Rig { agents, model, shields, memory, banks, dir }
}

/// A config as a client would send it, with `extra` merged in.
pub fn agent_config(extra: Value) -> llama_stack_rs::types::agents::AgentConfig {
    let mut base = json!({
        "model": MODEL,
        "instructions": "You are a helpful assistant",
        "enable_session_persistence": true,
        "sampling_params": {"strategy": "greedy", "temperature": 0.0, "max_tokens": 64},
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    serde_json::from_value(base).unwrap()
}

#[allow(clippy::needless_pass_by_value, reason = "tests pass `json!` values inline")]
pub fn turn_request(
    agent_id: &str,
    session_id: &str,
    messages: Value,
) -> llama_stack_rs::types::agents::CreateAgentTurnRequest {
    serde_json::from_value(json!({
        "agent_id": agent_id, "session_id": session_id, "messages": messages, "stream": true
    }))
    .unwrap()
}

/// Every event of a streamed turn.
pub async fn collect(
    agents: &Arc<Agents>,
    request: llama_stack_rs::types::agents::CreateAgentTurnRequest,
) -> Vec<AgentTurnResponseStreamChunk> {
    let stream = agents.create_turn(request, RequestContext::default()).await.unwrap();
    stream.map(|c| c.unwrap()).collect().await
}

/// Events in short: `turn_start`, `step_start:inference`, `step_progress:inference`, ...
pub fn shape(events: &[AgentTurnResponseStreamChunk]) -> Vec<String> {
    events
        .iter()
        .map(|c| match &c.event.payload {
            AgentTurnResponseEventPayload::TurnStart(_) => "turn_start".to_owned(),
            AgentTurnResponseEventPayload::TurnComplete(_) => "turn_complete".to_owned(),
            AgentTurnResponseEventPayload::StepStart(p) => format!("step_start:{}", p.step_type),
            AgentTurnResponseEventPayload::StepProgress(p) => format!("step_progress:{}", p.step_type),
            AgentTurnResponseEventPayload::StepComplete(p) => format!("step_complete:{}", p.step_type),
        })
        .collect()
}

/// `shape` with runs of progress events folded into one.
pub fn folded(events: &[AgentTurnResponseStreamChunk]) -> Vec<String> {
    let mut out = shape(events);
    out.dedup();
    out
}

pub fn final_turn(events: &[AgentTurnResponseStreamChunk]) -> llama_stack_rs::types::agents::Turn {
    match &events.last().unwrap().event.payload {
        AgentTurnResponseEventPayload::TurnComplete(t) => t.turn.clone(),
        other => panic!("the last event is not turn_complete: {other:?}"),
    }
}

//! Agents, sessions and turns in the agents provider's kv store.
//!
//! Keys follow the layout of the reference implementation, plus one index so a turn can be
//! found from its agent and turn id alone:
//!
//! | key | value |
//! |---|---|
//! | `agent:{agent_id}` | the `AgentConfig` |
//! | `session:{agent_id}:{session_id}` | a [`SessionInfo`] |
//! | `session:{agent_id}:{session_id}:{turn_id}` | a completed `Turn`, steps included |
//! | `turn:{agent_id}:{turn_id}` | the session id of that turn |
//!
//! Every record is one `set`, and a turn is written only once it has completed, so a process
//! killed in the middle of a turn leaves nothing of it behind. The index is written before the
//! turn itself: an index entry without its turn reads as an unknown turn. Nothing is cached;
//! every read goes to the store, so processes sharing one store see each other's writes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kvstore::KvStore;
use crate::types::agents::{AgentConfig, Turn};
use crate::types::common::Timestamp;
use crate::types::memory_banks::MemoryBankDef;

/// What is kept of a session besides its turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub session_name: String,
    /// The session's own bank, made when the first attachments arrive.
    #[serde(default)]
    pub memory_bank_id: Option<String>,
    #[serde(default)]
    pub memory_bank: Option<MemoryBankDef>,
    pub started_at: Timestamp,
}

#[derive(Clone)]
pub struct AgentStore {
    kv: Arc<dyn KvStore>,
}

fn agent_key(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

fn session_key(agent_id: &str, session_id: &str) -> String {
    format!("session:{agent_id}:{session_id}")
}

fn turn_key(agent_id: &str, session_id: &str, turn_id: &str) -> String {
    format!("session:{agent_id}:{session_id}:{turn_id}")
}

fn turn_index_key(agent_id: &str, turn_id: &str) -> String {
    format!("turn:{agent_id}:{turn_id}")
}

fn encode<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, raw: &str) -> Result<T> {
    serde_json::from_str(raw).map_err(|e| Error::Storage(format!("record `{key}` is unreadable: {e}")))
}

/// Ids become parts of keys; one holding the separator (or nothing) could reach another record.
pub fn check_id(kind: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.contains(':') || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{kind} `{id}` not found")));
    }
    Ok(())
}

impl AgentStore {
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }

    pub async fn put_agent(&self, agent_id: &str, config: &AgentConfig) -> Result<()> {
        self.kv.set(&agent_key(agent_id), &encode(config)?).await
    }

    pub async fn agent(&self, agent_id: &str) -> Result<Option<AgentConfig>> {
        if check_id("agent", agent_id).is_err() {
            return Ok(None);
        }
        let key = agent_key(agent_id);
        self.kv.get(&key).await?.map(|raw| decode(&key, &raw)).transpose()
    }

    /// Removes the agent first (so it is gone for everyone at once), then its sessions, turns
    /// and index entries. Answers the ids of the sessions it had.
    pub async fn delete_agent(&self, agent_id: &str) -> Result<Vec<String>> {
        self.kv.delete(&agent_key(agent_id)).await?;
        let mut sessions = Vec::new();
        let session_prefix = format!("session:{agent_id}:");
        for prefix in [session_prefix.clone(), format!("turn:{agent_id}:")] {
            for (key, _) in self.kv.scan_prefix(&prefix).await? {
                if let Some(id) = key.strip_prefix(&session_prefix).filter(|rest| !rest.contains(':')) {
                    sessions.push(id.to_owned());
                }
                self.kv.delete(&key).await?;
            }
        }
        Ok(sessions)
    }

    pub async fn put_session(&self, agent_id: &str, session: &SessionInfo) -> Result<()> {
        self.kv.set(&session_key(agent_id, &session.session_id), &encode(session)?).await
    }

    pub async fn session(&self, agent_id: &str, session_id: &str) -> Result<Option<SessionInfo>> {
        if check_id("session", session_id).is_err() {
            return Ok(None);
        }
        let key = session_key(agent_id, session_id);
        self.kv.get(&key).await?.map(|raw| decode(&key, &raw)).transpose()
    }

    pub async fn delete_session(&self, agent_id: &str, session_id: &str) -> Result<()> {
        self.kv.delete(&session_key(agent_id, session_id)).await?;
        for (key, raw) in self.kv.scan_prefix(&format!("turn:{agent_id}:")).await? {
            if raw == session_id {
                self.kv.delete(&key).await?;
            }
        }
        for (key, _) in self.kv.scan_prefix(&format!("{}:", session_key(agent_id, session_id))).await? {
            self.kv.delete(&key).await?;
        }
        Ok(())
    }

    /// The session's completed turns, oldest first (by start time, then completion time).
    pub async fn turns(&self, agent_id: &str, session_id: &str) -> Result<Vec<Turn>> {
        let rows = self.kv.scan_prefix(&format!("{}:", session_key(agent_id, session_id))).await?;
        let mut turns = Vec::with_capacity(rows.len());
        for (key, raw) in rows {
            match serde_json::from_str::<Turn>(&raw) {
                Ok(t) => turns.push(t),
                Err(e) => tracing::warn!("skipping unreadable turn `{key}`: {e}"),
            }
        }
        turns.sort_by(|a, b| (&a.started_at, &a.completed_at).cmp(&(&b.started_at, &b.completed_at)));
        Ok(turns)
    }

    /// Stores a completed turn: the index first, then the turn in one write.
    pub async fn put_turn(&self, agent_id: &str, turn: &Turn) -> Result<()> {
        self.kv.set(&turn_index_key(agent_id, &turn.turn_id), &turn.session_id).await?;
        self.kv.set(&turn_key(agent_id, &turn.session_id, &turn.turn_id), &encode(turn)?).await
    }

    pub async fn turn(&self, agent_id: &str, turn_id: &str) -> Result<Option<Turn>> {
        if check_id("turn", turn_id).is_err() {
            return Ok(None);
        }
        let Some(session_id) = self.kv.get(&turn_index_key(agent_id, turn_id)).await? else {
            return Ok(None);
        };
        let key = turn_key(agent_id, &session_id, turn_id);
        self.kv.get(&key).await?.map(|raw| decode(&key, &raw)).transpose()
    }
}

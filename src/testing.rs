//! Test doubles shared by the crate's own unit tests and the integration tests under `tests/`
//! (which turn on the `testing` feature through the crate's dev-dependency on itself). Nothing
//! here is built into the library otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a poisoned lock is a failed test")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use indexmap::IndexMap;

use crate::error::{Error, Result};
use crate::kvstore::MemoryKvStore;
use crate::providers::RequestContext;
use crate::providers::inference::{ChatStream, CompletionStream, InferenceProvider};
use crate::routing::ModelTable;
use crate::types::common::{AssistantRole, CompletionMessage, JsonObject, StopReason, ToolCall};
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponse, ChatCompletionResponseEventType as Ev,
    ChatCompletionResponseStreamChunk, CompletionRequest, CompletionResponse, EventDelta, ToolCallDelta,
    ToolCallDeltaContent, ToolCallParseStatus,
};
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// The model a [`ScriptedInference`] made with `default()` serves.
pub const SCRIPTED_MODEL: &str = "scripted-model";

/// One scripted answer of the model.
#[derive(Clone, Debug)]
pub struct Reply {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub stop: StopReason,
}

/// A plain text answer that ends the turn.
pub fn say(text: &str) -> Reply {
    Reply { text: text.to_owned(), calls: Vec::new(), stop: StopReason::EndOfTurn }
}

/// One tool call (`args` must be a JSON object), ending the message as a Llama tool call does.
pub fn call(id: &str, tool: &str, args: serde_json::Value) -> Reply {
    let arguments: JsonObject = serde_json::from_value(args).expect("tool call arguments are a JSON object");
    Reply {
        text: String::new(),
        calls: vec![ToolCall { call_id: id.to_owned(), tool_name: tool.into(), arguments }],
        stop: StopReason::EndOfMessage,
    }
}

/// An inference provider serving one model that answers each chat completion with the next
/// reply of its script (streamed word by word, tool calls as parsed deltas) and keeps every
/// request it was sent. An empty script is an upstream error, as a failing backend would be.
pub struct ScriptedInference {
    model: String,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<ChatCompletionRequest>>,
}

impl Default for ScriptedInference {
    fn default() -> Self {
        Self::new(SCRIPTED_MODEL)
    }
}

impl ScriptedInference {
    pub fn new(model: &str) -> Self {
        Self { model: model.to_owned(), replies: Mutex::default(), requests: Mutex::default() }
    }

    /// A model whose script is these text answers.
    pub fn saying<'a>(model: &str, texts: impl IntoIterator<Item = &'a str>) -> Self {
        let me = Self::new(model);
        for t in texts {
            me.push(say(t));
        }
        me
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn push(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    /// Every request sent so far, oldest first.
    pub fn requests(&self) -> Vec<ChatCompletionRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn next(&self, request: ChatCompletionRequest) -> Result<Reply> {
        self.requests.lock().unwrap().push(request);
        self.replies
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| Error::Upstream { provider: "scripted".into(), message: "no scripted reply left".into() })
    }
}

#[async_trait]
impl InferenceProvider for ScriptedInference {
    async fn list_models(&self) -> Result<Vec<ModelDef>> {
        Ok(vec![ModelDef {
            identifier: self.model.clone(),
            llama_model: self.model.clone(),
            metadata: JsonObject::new(),
        }])
    }
    async fn register_model(&self, _model: &ModelDefWithProvider) -> Result<()> {
        Ok(())
    }
    async fn chat_completion(
        &self,
        _model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<ChatCompletionResponse> {
        let r = self.next(request)?;
        Ok(ChatCompletionResponse {
            completion_message: CompletionMessage {
                role: AssistantRole::default(),
                content: r.text.into(),
                stop_reason: r.stop,
                tool_calls: r.calls,
            },
            logprobs: None,
        })
    }
    async fn chat_completion_stream(
        &self,
        _model: &ModelDefWithProvider,
        request: ChatCompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<ChatStream> {
        let r = self.next(request)?;
        let mut chunks = vec![ChatCompletionResponseStreamChunk::text(Ev::Start, "")];
        for word in r.text.split_inclusive(' ') {
            chunks.push(ChatCompletionResponseStreamChunk::text(Ev::Progress, word));
        }
        for c in r.calls {
            chunks.push(ChatCompletionResponseStreamChunk::new(
                Ev::Progress,
                EventDelta::ToolCall(ToolCallDelta {
                    content: ToolCallDeltaContent::Call(c),
                    parse_status: ToolCallParseStatus::Success,
                }),
                None,
            ));
        }
        chunks.push(ChatCompletionResponseStreamChunk::new(
            Ev::Complete,
            EventDelta::Text(String::new()),
            Some(r.stop),
        ));
        Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
    }
    async fn completion(
        &self,
        _model: &ModelDefWithProvider,
        _request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionResponse> {
        Err(Error::not_implemented("the scripted model answers chat completions only"))
    }
    async fn completion_stream(
        &self,
        _model: &ModelDefWithProvider,
        _request: CompletionRequest,
        _ctx: &RequestContext,
    ) -> Result<CompletionStream> {
        Err(Error::not_implemented("the scripted model answers chat completions only"))
    }
}

/// A model table over one inference provider (registered as `provider_id`), its registry in
/// memory, with the provider's models listed.
pub async fn model_table(provider_id: &str, provider: Arc<dyn InferenceProvider>) -> Arc<ModelTable> {
    let table = Arc::new(ModelTable::new(
        IndexMap::from([(provider_id.to_owned(), provider)]),
        Arc::new(MemoryKvStore::default()),
    ));
    table.initialize(Vec::new()).await.expect("the model table initialises");
    table
}

//! The turn loop: input shields, retrieval, inference and tool rounds, output shields, then the
//! turn is stored and announced. Every step is streamed as `step_start`, `step_progress`
//! deltas and `step_complete` with the whole step.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::persistence::SessionInfo;
use super::tools::{self, Tool, ToolContext};
use super::{Agents, new_id, retrieval};
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::telemetry::{SpanGuard, attributes};
use crate::types::agents::{
    AgentConfig, AgentTool, AgentTurnResponseEventPayload, AgentTurnResponseStepCompletePayload,
    AgentTurnResponseStepProgressPayload, AgentTurnResponseStepStartPayload, AgentTurnResponseStreamChunk,
    AgentTurnResponseTurnCompletePayload, AgentTurnResponseTurnStartPayload, Attachment, CreateAgentTurnRequest,
    InferenceStep, InferenceStepTag, MemoryQueryGeneratorConfig, MemoryRetrievalStepTag, MemoryToolDefinition,
    MemoryToolTag, ShieldCallStep, ShieldCallStepTag, Step, StepCompleteTag, StepProgressTag, StepStartTag, StepType,
    ToolExecutionStep, ToolExecutionStepTag, Turn, TurnCompleteTag, TurnStartTag,
};
use crate::types::common::{
    AssistantRole, CompletionMessage, InterleavedTextMedia, IpythonRole, JsonObject, Message, StopReason,
    SystemMessage, SystemRole, Timestamp, ToolCall, ToolChoice, ToolDefinition, ToolName, ToolResponse,
    ToolResponseMessage, TurnInputMessage, UserMessage,
};
use crate::types::inference::{
    ChatCompletionRequest, ChatCompletionResponseEventType, EventDelta, ToolCallDelta, ToolCallDeltaContent,
    ToolCallParseStatus,
};
use crate::types::safety::{SafetyViolation, ViolationLevel};

pub(super) struct TurnJob {
    pub agents: Arc<Agents>,
    pub config: AgentConfig,
    pub session: SessionInfo,
    pub request: CreateAgentTurnRequest,
    pub ctx: RequestContext,
}

type Events = mpsc::Sender<Result<AgentTurnResponseStreamChunk>>;

/// Whether a turn with attachments has something to read them with.
pub(super) fn handles_attachments(config: &AgentConfig, memory_providers: usize) -> bool {
    memory_providers > 0 || config.tools.iter().any(|t| matches!(t, AgentTool::CodeInterpreter(_)))
}

/// Runs one turn under its session's lock and streams its events into `events`. The turn goes
/// on (and is stored) when nobody reads the events any more.
pub(super) async fn run(job: TurnJob, events: Events) {
    let key = format!("{}:{}", job.request.agent_id, job.request.session_id);
    let agents = Arc::clone(&job.agents);
    let _guard = agents.locks.lock(&key).await;
    let mut turn = Executor::new(job, events.clone());
    if let Err(e) = turn.execute().await {
        turn.turn_span.fail();
        tracing::warn!("agent turn failed: {e}");
        let _ = events.send(Err(e)).await;
    }
}

/// The `ToolDefinition` the model sees for each agent tool (memory is not one: retrieval runs
/// before inference by itself).
fn tool_definitions(config: &AgentConfig) -> Vec<ToolDefinition> {
    use crate::types::common::BuiltinTool;
    let builtin = |b| ToolDefinition { tool_name: ToolName::Builtin(b), description: None, parameters: None };
    config
        .tools
        .iter()
        .filter_map(|t| match t {
            AgentTool::BraveSearch(_) => Some(builtin(BuiltinTool::BraveSearch)),
            AgentTool::WolframAlpha(_) => Some(builtin(BuiltinTool::WolframAlpha)),
            AgentTool::Photogen(_) => Some(builtin(BuiltinTool::Photogen)),
            AgentTool::CodeInterpreter(_) => Some(builtin(BuiltinTool::CodeInterpreter)),
            AgentTool::FunctionCall(f) => Some(ToolDefinition {
                tool_name: ToolName::from(f.function_name.as_str()),
                description: Some(f.description.clone()),
                parameters: Some(f.parameters.clone()),
            }),
            AgentTool::Memory(_) => None,
        })
        .collect()
}

/// The name a tool definition is called by.
fn tool_name(def: &AgentTool) -> Option<&str> {
    match def {
        AgentTool::BraveSearch(_) => Some("brave_search"),
        AgentTool::WolframAlpha(_) => Some("wolfram_alpha"),
        AgentTool::Photogen(_) => Some("photogen"),
        AgentTool::CodeInterpreter(_) => Some("code_interpreter"),
        AgentTool::FunctionCall(f) => Some(&f.function_name),
        AgentTool::Memory(_) => None,
    }
}

fn input_to_message(m: &TurnInputMessage) -> Message {
    match m {
        TurnInputMessage::User(u) => Message::User(u.clone()),
        TurnInputMessage::Ipython(t) => Message::Ipython(t.clone()),
    }
}

fn answer(text: impl Into<String>) -> CompletionMessage {
    CompletionMessage {
        role: AssistantRole::default(),
        content: InterleavedTextMedia::Text(text.into()),
        stop_reason: StopReason::EndOfTurn,
        tool_calls: Vec::new(),
    }
}

fn violation_message(v: &SafetyViolation) -> CompletionMessage {
    answer(v.user_message.clone().unwrap_or_default())
}

/// A stored turn as the messages the model saw and said. Retrieved context is not repeated,
/// and an answer a shield stopped is replaced by the shield's message.
fn turn_to_messages(turn: &Turn, out: &mut Vec<Message>) {
    for m in &turn.input_messages {
        match m {
            TurnInputMessage::User(u) => out.push(Message::User(UserMessage { context: None, ..u.clone() })),
            TurnInputMessage::Ipython(t) => out.push(Message::Ipython(t.clone())),
        }
    }
    for step in &turn.steps {
        match step {
            Step::Inference(s) => out.push(Message::Assistant(s.model_response.clone())),
            Step::ToolExecution(s) => {
                for r in &s.tool_responses {
                    out.push(Message::Ipython(ToolResponseMessage {
                        role: IpythonRole::default(),
                        call_id: r.call_id.clone(),
                        tool_name: r.tool_name.clone(),
                        content: r.content.clone(),
                    }));
                }
            }
            Step::ShieldCall(s) => {
                if let Some(v) = &s.violation {
                    if matches!(out.last(), Some(Message::Assistant(_))) {
                        out.pop();
                    }
                    out.push(Message::Assistant(violation_message(v)));
                }
            }
            Step::MemoryRetrieval(_) => {}
        }
    }
}

struct Executor {
    agents: Arc<Agents>,
    config: AgentConfig,
    session: SessionInfo,
    request: CreateAgentTurnRequest,
    /// The request's context inside the turn's span: inference, shields, retrieval and tools run
    /// as child spans of the turn, so one turn reads as one trace.
    ctx: RequestContext,
    /// Open for the whole turn; ends when the executor is dropped.
    turn_span: SpanGuard,
    events: Events,
    turn_id: String,
    steps: Vec<Step>,
    output_attachments: Vec<Attachment>,
}

/// How the loop ends.
enum Outcome {
    Answer(CompletionMessage),
    /// A shield stopped the turn; output shields do not run again.
    Stopped(CompletionMessage),
}

impl Executor {
    fn new(job: TurnJob, events: Events) -> Self {
        let turn_span = job.ctx.span_with(
            "agents.turn",
            attributes([("agent_id", job.request.agent_id.as_str()), ("session_id", job.request.session_id.as_str())]),
        );
        Self {
            agents: job.agents,
            config: job.config,
            session: job.session,
            request: job.request,
            ctx: job.ctx.within(&turn_span),
            turn_span,
            events,
            turn_id: new_id(),
            steps: Vec::new(),
            output_attachments: Vec::new(),
        }
    }

    async fn emit(&self, payload: AgentTurnResponseEventPayload) {
        // A reader that went away does not stop the turn.
        let _ = self.events.send(Ok(payload.into())).await;
    }

    async fn step_start(&self, step_type: StepType, step_id: &str, metadata: JsonObject) {
        self.emit(AgentTurnResponseEventPayload::StepStart(AgentTurnResponseStepStartPayload {
            event_type: StepStartTag::default(),
            step_type,
            step_id: step_id.to_owned(),
            metadata: Some(metadata),
        }))
        .await;
    }

    async fn step_complete(&mut self, step: Step) {
        self.emit(AgentTurnResponseEventPayload::StepComplete(AgentTurnResponseStepCompletePayload {
            event_type: StepCompleteTag::default(),
            step_type: step.step_type(),
            step_details: step.clone(),
        }))
        .await;
        self.steps.push(step);
    }

    async fn progress(&self, step_type: StepType, step_id: &str, text: Option<String>, call: Option<ToolCallDelta>) {
        self.emit(AgentTurnResponseEventPayload::StepProgress(AgentTurnResponseStepProgressPayload {
            event_type: StepProgressTag::default(),
            step_type,
            step_id: step_id.to_owned(),
            model_response_text_delta: text,
            tool_call_delta: call,
            tool_response_text_delta: None,
        }))
        .await;
    }

    async fn execute(&mut self) -> Result<()> {
        let started_at = Timestamp::now();
        self.emit(AgentTurnResponseEventPayload::TurnStart(AgentTurnResponseTurnStartPayload {
            event_type: TurnStartTag::default(),
            turn_id: self.turn_id.clone(),
        }))
        .await;

        let agent_id = self.request.agent_id.clone();
        let session_id = self.request.session_id.clone();
        let store = self.agents.store.clone();
        // Read again under the session's lock: an earlier turn may have given it a bank.
        self.session = store
            .session(&agent_id, &session_id)
            .await?
            .ok_or_else(|| Error::invalid(format!("session `{session_id}` not found for agent `{agent_id}`")))?;
        let mut messages = Vec::new();
        if !self.config.instructions.is_empty() {
            messages.push(Message::System(SystemMessage {
                role: SystemRole::default(),
                content: self.config.instructions.clone().into(),
            }));
        }
        for turn in store.turns(&agent_id, &session_id).await? {
            turn_to_messages(&turn, &mut messages);
        }
        messages.extend(self.request.messages.iter().map(input_to_message));

        let outcome = self.run_loop(&mut messages).await?;
        let output_message = match outcome {
            Outcome::Stopped(m) => m,
            Outcome::Answer(m) => {
                let shields = self.config.output_shields.clone();
                let mut seen = messages.clone();
                seen.push(Message::Assistant(m.clone()));
                match self.shield_step(&seen, &shields, "assistant-output").await? {
                    Some(v) => violation_message(&v),
                    None => m,
                }
            }
        };

        let turn = Turn {
            turn_id: self.turn_id.clone(),
            session_id: session_id.clone(),
            input_messages: self.request.messages.clone(),
            steps: std::mem::take(&mut self.steps),
            output_message,
            output_attachments: std::mem::take(&mut self.output_attachments),
            started_at,
            completed_at: Some(Timestamp::now()),
        };
        // A session deleted while its turn ran keeps nothing of it.
        if store.session(&agent_id, &session_id).await?.is_none() {
            return Err(Error::invalid(format!("session `{session_id}` was deleted while the turn ran")));
        }
        store.put_turn(&agent_id, &turn).await?;
        self.emit(AgentTurnResponseEventPayload::TurnComplete(AgentTurnResponseTurnCompletePayload {
            event_type: TurnCompleteTag::default(),
            turn,
        }))
        .await;
        Ok(())
    }

    async fn run_loop(&mut self, messages: &mut Vec<Message>) -> Result<Outcome> {
        let shields = self.config.input_shields.clone();
        if let Some(v) = self.shield_step(messages, &shields, "user-input").await? {
            return Ok(Outcome::Stopped(violation_message(&v)));
        }

        let attachments = self.request.attachments.clone().unwrap_or_default();
        let memory = self.memory_tool();
        let code_interpreter = self.config.tools.iter().any(|t| matches!(t, AgentTool::CodeInterpreter(_)));
        let for_code = code_interpreter && self.config.tool_choice == Some(ToolChoice::Required);
        let can_remember = !self.agents.memory_banks.provider_ids().is_empty();
        let retrieve =
            if attachments.is_empty() { memory.is_some() } else { !for_code && (memory.is_some() || can_remember) };
        if retrieve {
            let memory = memory.unwrap_or_else(default_memory_tool);
            self.retrieval_step(&memory, messages, &attachments).await?;
        } else if !attachments.is_empty() {
            // Attachments for the code interpreter become files in the session's directory.
            let note = retrieval::materialise(&self.work_dir(), &attachments).await?;
            messages.push(Message::Ipython(note));
        }

        let tool_defs = tool_definitions(&self.config);
        let mut tool_rounds = 0i64;
        loop {
            let message = self.inference_step(messages, &tool_defs).await?;
            if tool_rounds >= self.config.max_infer_iters || message.stop_reason == StopReason::OutOfTokens {
                return Ok(Outcome::Answer(message));
            }
            if message.tool_calls.is_empty() {
                if message.stop_reason == StopReason::EndOfTurn {
                    return Ok(Outcome::Answer(message));
                }
                // A partial message: the model goes on from it.
                messages.push(Message::Assistant(message));
                tool_rounds += 1;
                continue;
            }
            // Calls the server cannot run (client tools) end the turn: the client answers them in
            // its next turn with tool response messages.
            let mut runnable = Vec::with_capacity(message.tool_calls.len());
            for call in &message.tool_calls {
                match self.server_tool(&call.tool_name)? {
                    Some(found) => runnable.push(found),
                    None => return Ok(Outcome::Answer(message)),
                }
            }
            messages.push(Message::Assistant(message.clone()));
            if let Some(stop) = self.tool_round(messages, &message.tool_calls, runnable).await? {
                return Ok(Outcome::Stopped(stop));
            }
            tool_rounds += 1;
        }
    }

    fn memory_tool(&self) -> Option<MemoryToolDefinition> {
        self.config.tools.iter().find_map(|t| match t {
            AgentTool::Memory(m) => Some(m.clone()),
            _ => None,
        })
    }

    fn work_dir(&self) -> std::path::PathBuf {
        self.agents.work_root.join(&self.session.session_id)
    }

    /// The definition and implementation of a tool the server runs, `None` for a client tool.
    fn server_tool(&self, name: &ToolName) -> Result<Option<(AgentTool, Arc<dyn Tool>)>> {
        let Some(def) = self.config.tools.iter().find(|t| tool_name(t) == Some(name.as_str())) else {
            return Ok(None);
        };
        Ok(tools::builtin(def, &self.agents.tool_settings)?.map(|tool| (def.clone(), tool)))
    }

    /// Runs the shields on `messages` as one `shield_call` step. The first violation at level
    /// `error` is returned (and recorded); a warning is only logged.
    async fn shield_step(
        &mut self,
        messages: &[Message],
        shields: &[String],
        touchpoint: &str,
    ) -> Result<Option<SafetyViolation>> {
        if shields.is_empty() {
            return Ok(None);
        }
        let step_id = new_id();
        let started_at = Timestamp::now();
        let mut meta = JsonObject::new();
        meta.insert("touchpoint".into(), Value::String(touchpoint.to_owned()));
        self.step_start(StepType::ShieldCall, &step_id, meta).await;
        let span = self.ctx.span_with("agents.shield_call", attributes([("touchpoint", touchpoint)]));
        let runs = shields.iter().map(|id| {
            let table = Arc::clone(&self.agents.shields);
            let messages = messages.to_vec();
            let ctx = self.ctx.within(&span);
            async move {
                let span = ctx.span_with("safety.run_shield", attributes([("shield_id", id.as_str())]));
                let ctx = ctx.within(&span);
                let run = async {
                    let (shield, provider) = table.resolve(id).await?;
                    provider.run_shield(&shield, messages, JsonObject::new(), &ctx).await
                };
                span.record(run.await)
            }
        });
        let mut violation = None;
        for (id, result) in shields.iter().zip(futures::future::join_all(runs).await) {
            match result?.violation {
                Some(v) if v.violation_level == ViolationLevel::Error && violation.is_none() => {
                    violation = Some(v);
                }
                Some(v) if v.violation_level == ViolationLevel::Warn => {
                    tracing::warn!("shield `{id}` warns: {}", v.user_message.as_deref().unwrap_or_default());
                }
                _ => {}
            }
        }
        let step = ShieldCallStep {
            turn_id: self.turn_id.clone(),
            step_id,
            started_at: Some(started_at),
            completed_at: Some(Timestamp::now()),
            step_type: ShieldCallStepTag::default(),
            violation: violation.clone(),
        };
        self.step_complete(Step::ShieldCall(step)).await;
        Ok(violation)
    }

    async fn retrieval_step(
        &mut self,
        memory: &MemoryToolDefinition,
        messages: &mut [Message],
        attachments: &[Attachment],
    ) -> Result<()> {
        let step_id = new_id();
        let started_at = Timestamp::now();
        self.step_start(StepType::MemoryRetrieval, &step_id, JsonObject::new()).await;
        let span = self.ctx.span("agents.memory_retrieval");
        let ctx = self.ctx.within(&span);
        let found = retrieval::retrieve(
            &self.agents,
            &self.config,
            &self.request.agent_id,
            &mut self.session,
            memory,
            messages,
            attachments,
            &ctx,
        )
        .await;
        let found = span.record(found)?;
        let inserted = if found.context.is_empty() {
            InterleavedTextMedia::Text(String::new())
        } else {
            InterleavedTextMedia::List(
                found.context.iter().cloned().map(crate::types::common::MediaItem::Text).collect(),
            )
        };
        if !found.context.is_empty() {
            // The retrieved text goes with the newest user message.
            if let Some(Message::User(u)) = messages.iter_mut().rev().find(|m| matches!(m, Message::User(_))) {
                u.context = Some(InterleavedTextMedia::Text(found.context.join("\n")));
            }
        }
        let step = crate::types::agents::MemoryRetrievalStep {
            turn_id: self.turn_id.clone(),
            step_id,
            started_at: Some(started_at),
            completed_at: Some(Timestamp::now()),
            step_type: MemoryRetrievalStepTag::default(),
            memory_bank_ids: found.bank_ids,
            inserted_context: inserted,
        };
        self.step_complete(Step::MemoryRetrieval(step)).await;
        Ok(())
    }

    async fn inference_step(&mut self, messages: &[Message], tools: &[ToolDefinition]) -> Result<CompletionMessage> {
        let step_id = new_id();
        let started_at = Timestamp::now();
        self.step_start(StepType::Inference, &step_id, JsonObject::new()).await;
        let request = ChatCompletionRequest {
            model: self.config.model.clone(),
            messages: messages.to_vec(),
            sampling_params: self.config.sampling_params.clone(),
            tools: tools.to_vec(),
            tool_choice: self.config.tool_choice,
            tool_prompt_format: self.config.tool_prompt_format,
            stream: Some(true),
            logprobs: None,
        };
        let span = self.ctx.span_with("agents.inference", attributes([("model_id", self.config.model.as_str())]));
        let (model, provider) = self.agents.models.resolve(&self.config.model).await?;
        let mut stream = provider.chat_completion_stream(&model, request, &self.ctx.within(&span)).await?;
        let mut content = String::new();
        let mut tool_calls: Vec<ToolCall> = Vec::new();
        let mut stop_reason = None;
        while let Some(chunk) = stream.next().await {
            let event = chunk?.event;
            match event.event_type {
                ChatCompletionResponseEventType::Start => continue,
                ChatCompletionResponseEventType::Complete => {
                    stop_reason = Some(event.stop_reason.unwrap_or(StopReason::EndOfTurn));
                    continue;
                }
                ChatCompletionResponseEventType::Progress => {}
            }
            match event.delta {
                EventDelta::ToolCall(delta) => {
                    if let (ToolCallParseStatus::Success, ToolCallDeltaContent::Call(call)) =
                        (delta.parse_status, &delta.content)
                    {
                        tool_calls.push(call.clone());
                    }
                    self.progress(StepType::Inference, &step_id, Some(String::new()), Some(delta)).await;
                }
                EventDelta::Text(text) => {
                    content.push_str(&text);
                    if event.stop_reason.is_none() && !text.is_empty() {
                        self.progress(StepType::Inference, &step_id, Some(text), None).await;
                    }
                }
            }
            if let Some(r) = event.stop_reason {
                stop_reason = Some(r);
            }
        }
        if !tool_calls.is_empty() {
            content.clear();
        }
        let message = CompletionMessage {
            role: AssistantRole::default(),
            content: InterleavedTextMedia::Text(content),
            stop_reason: stop_reason.unwrap_or(StopReason::OutOfTokens),
            tool_calls,
        };
        let step = InferenceStep {
            turn_id: self.turn_id.clone(),
            step_id,
            started_at: Some(started_at),
            completed_at: Some(Timestamp::now()),
            step_type: InferenceStepTag::default(),
            model_response: message.clone(),
        };
        self.step_complete(Step::Inference(step)).await;
        Ok(message)
    }

    /// Runs the model's tool calls: the tools' input shields, one `tool_execution` step for all
    /// the calls, then the tools' output shields. Answers the shield's message when one stops
    /// the turn; otherwise the responses are appended to `messages`.
    async fn tool_round(
        &mut self,
        messages: &mut Vec<Message>,
        calls: &[ToolCall],
        runnable: Vec<(AgentTool, Arc<dyn Tool>)>,
    ) -> Result<Option<CompletionMessage>> {
        let mut input_shields: Vec<String> = Vec::new();
        let mut output_shields: Vec<String> = Vec::new();
        for (def, _) in &runnable {
            for s in def.input_shields() {
                if !input_shields.contains(s) {
                    input_shields.push(s.clone());
                }
            }
            for s in def.output_shields() {
                if !output_shields.contains(s) {
                    output_shields.push(s.clone());
                }
            }
        }
        if let Some(v) = self.shield_step(messages, &input_shields, "tool-input").await? {
            return Ok(Some(violation_message(&v)));
        }

        let step_id = new_id();
        let started_at = Timestamp::now();
        self.step_start(StepType::ToolExecution, &step_id, JsonObject::new()).await;
        let work_dir = self.work_dir();
        if let Err(e) = tokio::fs::create_dir_all(&work_dir).await {
            return Err(Error::internal(format!("cannot create the tool working directory: {e}")));
        }
        let mut responses = Vec::with_capacity(calls.len());
        for (call, (_, tool)) in calls.iter().zip(&runnable) {
            let span =
                self.ctx.span_with("agents.tool_execution", attributes([("tool_name", call.tool_name.as_str())]));
            let tool_ctx = ToolContext { work_dir: work_dir.clone(), request: self.ctx.within(&span) };
            let delta = ToolCallDelta {
                content: ToolCallDeltaContent::Call(call.clone()),
                parse_status: ToolCallParseStatus::Success,
            };
            self.progress(StepType::ToolExecution, &step_id, None, Some(delta)).await;
            let response = match tool.run(call, &tool_ctx).await {
                Ok(out) => {
                    self.output_attachments.extend(out.attachments);
                    out.response
                }
                // The model sees the failure and may answer or try again.
                Err(e) => ToolResponse {
                    call_id: call.call_id.clone(),
                    tool_name: call.tool_name.clone(),
                    content: InterleavedTextMedia::Text(format!("Error when running tool: {e}")),
                },
            };
            responses.push(response);
        }
        let step = ToolExecutionStep {
            turn_id: self.turn_id.clone(),
            step_id,
            started_at: Some(started_at),
            completed_at: Some(Timestamp::now()),
            step_type: ToolExecutionStepTag::default(),
            tool_calls: calls.to_vec(),
            tool_responses: responses.clone(),
        };
        self.step_complete(Step::ToolExecution(step)).await;
        for r in responses {
            messages.push(Message::Ipython(ToolResponseMessage {
                role: IpythonRole::default(),
                call_id: r.call_id,
                tool_name: r.tool_name,
                content: r.content,
            }));
        }
        if let Some(v) = self.shield_step(messages, &output_shields, "tool-output").await? {
            return Ok(Some(violation_message(&v)));
        }
        Ok(None)
    }
}

/// The memory settings used for attachments when the agent has no memory tool: the session's
/// own bank with upstream's defaults.
fn default_memory_tool() -> MemoryToolDefinition {
    MemoryToolDefinition {
        input_shields: Vec::new(),
        output_shields: Vec::new(),
        kind: MemoryToolTag::default(),
        memory_bank_configs: Vec::new(),
        query_generator_config: MemoryQueryGeneratorConfig::default(),
        max_tokens_in_context: 4096,
        max_chunks: 10,
    }
}

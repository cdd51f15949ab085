//! Retrieval for a turn: the session's own bank (filled from the turn's attachments), the banks
//! the memory tool names, a query made from the conversation, and the picked chunks as context
//! for the newest user message. Also turns attachments into files for the code interpreter.

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use super::Agents;
use super::persistence::SessionInfo;
use crate::error::{Error, Result};
use crate::providers::RequestContext;
use crate::types::agents::{AgentConfig, Attachment, MemoryQueryGeneratorConfig, MemoryToolDefinition};
use crate::types::common::{
    BuiltinTool, InterleavedTextMedia, IpythonRole, JsonObject, MediaItem, Message, ToolName, ToolResponseMessage,
    UserMessage, UserRole,
};
use crate::types::inference::ChatCompletionRequest;
use crate::types::memory::{Chunk, DocumentContent, MemoryBankDocument};
use crate::types::memory_banks::{MemoryBankDef, MemoryBankDefTagged, VectorMemoryBankDef, VectorTag};

/// The embedding model and chunk size of a session's own bank (the reference agent's values).
const SESSION_BANK_EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";
const SESSION_BANK_CHUNK_TOKENS: i64 = 512;

const CONTEXT_HEADER: &str =
    "Here are the retrieved documents for relevant context:\n=== START-RETRIEVED-CONTEXT ===\n";
const CONTEXT_FOOTER: &str = "\n=== END-RETRIEVED-CONTEXT ===\n";

pub(super) struct Retrieved {
    pub bank_ids: Vec<String>,
    /// Header, one piece per chunk, footer; empty when nothing was found.
    pub context: Vec<String>,
}

#[allow(clippy::too_many_arguments, reason = "the pieces of a turn retrieval reads")]
pub(super) async fn retrieve(
    agents: &Agents,
    config: &AgentConfig,
    agent_id: &str,
    session: &mut SessionInfo,
    memory: &MemoryToolDefinition,
    messages: &[Message],
    attachments: &[Attachment],
    ctx: &RequestContext,
) -> Result<Retrieved> {
    let mut bank_ids: Vec<String> = memory.memory_bank_configs.iter().map(|b| b.bank_id().to_owned()).collect();
    if !attachments.is_empty() {
        let bank = session_bank(agents, agent_id, session, memory).await?;
        let documents = attachments
            .iter()
            .map(|a| MemoryBankDocument {
                document_id: uuid::Uuid::new_v4().to_string(),
                content: a.content.clone(),
                mime_type: Some(a.mime_type.clone()),
                metadata: JsonObject::new(),
            })
            .collect();
        let (bank, provider) = agents.memory_banks.resolve(&bank).await?;
        provider.insert_documents(&bank, documents, None, ctx).await?;
    }
    if let Some(id) = &session.memory_bank_id {
        if !bank_ids.contains(id) {
            bank_ids.push(id.clone());
        }
    }
    if bank_ids.is_empty() {
        return Ok(Retrieved { bank_ids, context: Vec::new() });
    }

    let query = make_query(agents, config, memory, messages, ctx).await?;
    let mut params = JsonObject::new();
    params.insert("max_chunks".into(), Value::from(memory.max_chunks));
    let queries = bank_ids.iter().map(|id| {
        let params = params.clone();
        let query = query.clone();
        async move {
            let (bank, provider) = agents.memory_banks.resolve(id).await?;
            provider.query_documents(&bank, InterleavedTextMedia::Text(query), Some(params), ctx).await
        }
    });
    let mut scored: Vec<(f64, Chunk)> = Vec::new();
    for answer in futures::future::join_all(queries).await {
        let answer = answer?;
        scored.extend(answer.scores.into_iter().zip(answer.chunks));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut picked = Vec::new();
    let mut tokens = 0i64;
    for (_, chunk) in scored.into_iter().take(usize::try_from(memory.max_chunks).unwrap_or(0)) {
        tokens += chunk.token_count;
        if tokens > memory.max_tokens_in_context {
            break;
        }
        picked.push(format!("id:{}; content:{}", chunk.document_id, chunk.content.as_text(" ")));
    }
    if picked.is_empty() {
        return Ok(Retrieved { bank_ids, context: Vec::new() });
    }
    let mut context = Vec::with_capacity(picked.len() + 2);
    context.push(CONTEXT_HEADER.to_owned());
    context.extend(picked);
    context.push(CONTEXT_FOOTER.to_owned());
    Ok(Retrieved { bank_ids, context })
}

/// The session's bank, registered (and recorded in the session) the first time. It lives on the
/// provider of the first bank the memory tool names, else on the first memory provider.
async fn session_bank(
    agents: &Agents,
    agent_id: &str,
    session: &mut SessionInfo,
    memory: &MemoryToolDefinition,
) -> Result<String> {
    if let Some(id) = &session.memory_bank_id {
        return Ok(id.clone());
    }
    let provider_id = match memory.memory_bank_configs.first() {
        Some(first) => agents.memory_banks.resolve(first.bank_id()).await?.0.provider_id().to_owned(),
        None => agents.memory_banks.provider_ids().first().map(|s| (*s).to_owned()).ok_or_else(|| {
            Error::invalid("attachments need a memory provider for the session's bank, and this stack runs none")
        })?,
    };
    let def = MemoryBankDef(MemoryBankDefTagged::Vector(VectorMemoryBankDef {
        bank_type: VectorTag::default(),
        identifier: format!("memory_bank_{}", session.session_id),
        provider_id,
        embedding_model: SESSION_BANK_EMBEDDING_MODEL.to_owned(),
        chunk_size_in_tokens: SESSION_BANK_CHUNK_TOKENS,
        overlap_size_in_tokens: None,
    }));
    let registered = agents.memory_banks.register(def).await?;
    session.memory_bank_id = Some(registered.identifier().to_owned());
    session.memory_bank = Some(registered.clone());
    agents.store.put_session(agent_id, session).await?;
    Ok(registered.identifier().to_owned())
}

/// The retrieval query, by the memory tool's query generator.
async fn make_query(
    agents: &Agents,
    config: &AgentConfig,
    memory: &MemoryToolDefinition,
    messages: &[Message],
    ctx: &RequestContext,
) -> Result<String> {
    match &memory.query_generator_config {
        MemoryQueryGeneratorConfig::Default(d) => {
            Ok(messages.iter().map(|m| m.content().as_text(" ")).collect::<Vec<_>>().join(&d.sep))
        }
        MemoryQueryGeneratorConfig::Llm(llm) => {
            let dumped: Vec<Value> = messages.iter().filter_map(|m| serde_json::to_value(m).ok()).collect();
            let mut env = minijinja::Environment::new();
            env.add_template("query", &llm.template)
                .map_err(|e| Error::invalid(format!("the memory query template does not parse: {e}")))?;
            let rendered = env
                .get_template("query")
                .and_then(|t| t.render(minijinja::context! { messages => dumped }))
                .map_err(|e| Error::invalid(format!("the memory query template does not render: {e}")))?;
            let model_id = if llm.model.is_empty() { config.model.clone() } else { llm.model.clone() };
            let request = ChatCompletionRequest {
                model: model_id.clone(),
                messages: vec![Message::User(UserMessage {
                    role: UserRole::default(),
                    content: InterleavedTextMedia::Text(rendered),
                    context: None,
                })],
                sampling_params: Some(crate::types::common::SamplingParams::default()),
                tools: Vec::new(),
                tool_choice: None,
                tool_prompt_format: None,
                stream: Some(false),
                logprobs: None,
            };
            let (model, provider) = agents.models.resolve(&model_id).await?;
            let answer = provider.chat_completion(&model, request, ctx).await?;
            Ok(answer.completion_message.content.as_text(" "))
        }
        MemoryQueryGeneratorConfig::Custom(_) => {
            Err(Error::not_implemented("the `custom` memory query generator has no implementation"))
        }
    }
}

/// Whether an attachment is a `file://` URL (refused: the server's disk is not the client's).
pub(super) fn names_a_server_file(a: &Attachment) -> bool {
    match &a.content {
        DocumentContent::Url(u) => u.uri.starts_with("file://"),
        DocumentContent::Media(InterleavedTextMedia::Text(t)) => t.starts_with("file://"),
        DocumentContent::Media(_) => false,
    }
}

/// Writes the attachments into `dir` and answers the message telling the model where they are.
pub(super) async fn materialise(dir: &Path, attachments: &[Attachment]) -> Result<ToolResponseMessage> {
    tokio::fs::create_dir_all(dir).await?;
    let mut lines = Vec::with_capacity(attachments.len());
    for (i, a) in attachments.iter().enumerate() {
        let (name, bytes) = attachment_bytes(i, a).await?;
        let path = dir.join(name);
        tokio::fs::write(&path, bytes).await?;
        lines.push(MediaItem::Text(format!("# There is a file accessible to you at \"{}\"\n", path.display())));
    }
    Ok(ToolResponseMessage {
        role: IpythonRole::default(),
        call_id: String::new(),
        tool_name: ToolName::Builtin(BuiltinTool::CodeInterpreter),
        content: InterleavedTextMedia::List(lines),
    })
}

fn extension(mime: &str) -> &'static str {
    match mime.split(';').next().unwrap_or_default().trim() {
        "text/csv" => ".csv",
        "application/json" => ".json",
        "application/pdf" => ".pdf",
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "text/html" => ".html",
        "text/markdown" => ".md",
        _ => ".txt",
    }
}

async fn attachment_bytes(i: usize, a: &Attachment) -> Result<(String, Vec<u8>)> {
    let at = format!("attachments[{i}]");
    let prefix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let url = match &a.content {
        DocumentContent::Url(u) => u.uri.clone(),
        DocumentContent::Media(InterleavedTextMedia::Text(t))
            if ["http://", "https://", "file://", "data:"].iter().any(|p| t.starts_with(p)) =>
        {
            t.clone()
        }
        DocumentContent::Media(InterleavedTextMedia::Text(t)) => {
            return Ok((format!("{prefix}_attachment_{i}{}", extension(&a.mime_type)), t.clone().into_bytes()));
        }
        DocumentContent::Media(_) => {
            return Err(Error::invalid(format!("`{at}`: only text or a URL can become a file")));
        }
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let bytes = decode_data_url(rest).ok_or_else(|| Error::invalid(format!("`{at}`: malformed data URL")))?;
        return Ok((format!("{prefix}_attachment_{i}{}", extension(&a.mime_type)), bytes));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let response = reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::invalid(format!("`{at}`: cannot download `{url}`: {e}")))?;
        let bytes = response.bytes().await.map_err(|e| Error::invalid(format!("`{at}`: `{url}`: {e}")))?;
        let base = url.rsplit('/').next().filter(|b| !b.is_empty() && !b.contains(['?', '#'])).unwrap_or("download");
        return Ok((format!("{prefix}_{base}"), bytes.to_vec()));
    }
    Err(Error::invalid(format!("`{at}`: `{url}` is not readable here; send the content inline or as a data: URL")))
}

/// The bytes of a data URL body (`<mime>[;charset=..][;base64],<data>`).
fn decode_data_url(rest: &str) -> Option<Vec<u8>> {
    let (meta, data) = rest.split_once(',')?;
    if meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
        return base64::engine::general_purpose::STANDARD.decode(data.trim()).ok();
    }
    let mut out = Vec::with_capacity(data.len());
    let bytes = data.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

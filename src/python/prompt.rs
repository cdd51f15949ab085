//! Bridge for the Llama prompt format: rendering prompts, parsing replies and streams, and the
//! tokenizer. Requests and messages cross as JSON text in their wire form.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use super::errors::to_py;
use crate::error::Error;
use crate::prompt::{self, Llama3Tokenizer, StreamParser};
use crate::types::common::{Message, StopReason, ToolPromptFormat};
use crate::types::inference::ChatCompletionRequest;

fn read_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> PyResult<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        to_py(Error::invalid(format!(
            "{what}{}: {}",
            if at == "." { String::new() } else { format!(".{at}") },
            e.inner()
        )))
    })
}

fn write_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| to_py(Error::internal(e.to_string())))
}

fn stop_reason(s: &str) -> PyResult<StopReason> {
    StopReason::parse(s).ok_or_else(|| {
        to_py(Error::invalid(format!("stop_reason: `{s}` is not one of end_of_turn, end_of_message, out_of_tokens")))
    })
}

fn tool_prompt_format(s: &str) -> PyResult<ToolPromptFormat> {
    ToolPromptFormat::parse(s).ok_or_else(|| {
        to_py(Error::invalid(format!("tool_prompt_format: `{s}` is not one of json, function_tag, python_list")))
    })
}

fn date(today: Option<&str>) -> PyResult<chrono::NaiveDate> {
    match today {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| to_py(Error::invalid(format!("today: `{d}` is not a YYYY-MM-DD date")))),
        None => Ok(chrono::Local::now().date_naive()),
    }
}

/// The messages the model sees for `request_json` (a JSON list): the request's messages with
/// the system and tool prompts of `llama_model`'s family.
#[pyfunction]
#[pyo3(signature = (request_json, llama_model, today=None))]
pub fn augment_messages(request_json: &str, llama_model: &str, today: Option<&str>) -> PyResult<String> {
    let req: ChatCompletionRequest = read_json("request", request_json)?;
    let messages = prompt::augment_messages(&req, prompt::style_for(llama_model), date(today)?).map_err(to_py)?;
    write_json(&messages)
}

/// The prompt text a text-completion backend receives for `request_json`, for the model
/// descriptor `llama_model`. `today` (`YYYY-MM-DD`) fixes the date in the system prompt.
#[pyfunction]
#[pyo3(signature = (request_json, llama_model, today=None))]
pub fn render_chat_prompt(request_json: &str, llama_model: &str, today: Option<&str>) -> PyResult<String> {
    let req: ChatCompletionRequest = read_json("request", request_json)?;
    prompt::render_chat_prompt_on(&req, llama_model, date(today)?).map_err(to_py)
}

/// The dialog prompt for already-augmented messages (a JSON list).
#[pyfunction]
#[pyo3(signature = (messages_json, tool_prompt_format="json"))]
pub fn render_messages(messages_json: &str, tool_prompt_format: &str) -> PyResult<String> {
    let messages: Vec<Message> = read_json("messages", messages_json)?;
    Ok(prompt::render_messages(&messages, self::tool_prompt_format(tool_prompt_format)?))
}

/// Parses model output into an assistant message, returned as JSON.
#[pyfunction]
pub fn decode_assistant_message(text: &str, stop_reason: &str) -> PyResult<String> {
    write_json(&prompt::decode_assistant_message(text, self::stop_reason(stop_reason)?))
}

/// The events of a streamed reply delivered in `chunks`, as a JSON list: start, progress
/// events, the parsed tool call (or failure), complete.
#[pyfunction]
#[pyo3(signature = (chunks, stop_reason=None))]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 hands arguments over as owned values")]
pub fn stream_events(chunks: Vec<String>, stop_reason: Option<&str>) -> PyResult<String> {
    let stop = stop_reason.map(self::stop_reason).transpose()?;
    let mut parser = StreamParser::new();
    let mut events = vec![StreamParser::start_event()];
    for chunk in &chunks {
        events.extend(parser.push(chunk));
    }
    events.extend(parser.finish(stop));
    write_json(&events)
}

/// Tokenizers by file, so repeated calls do not reload the 2 MB ranks file.
fn tokenizer(path: &Path) -> PyResult<Arc<Llama3Tokenizer>> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Arc<Llama3Tokenizer>>>> = Mutex::new(None);
    let mut guard = CACHE.lock().map_err(|_| to_py(Error::internal("tokenizer cache poisoned")))?;
    let cache = guard.get_or_insert_with(HashMap::new);
    if let Some(t) = cache.get(path) {
        return Ok(Arc::clone(t));
    }
    let t = Arc::new(Llama3Tokenizer::from_file(path).map_err(to_py)?);
    cache.insert(path.to_path_buf(), Arc::clone(&t));
    Ok(t)
}

/// Token ids of `text` with the Llama 3 tokenizer at `path`; special-token texts become special
/// tokens unless `allow_special` is false.
#[pyfunction]
#[pyo3(signature = (path, text, allow_special=true))]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 hands arguments over as owned values")]
pub fn tokenize(py: Python<'_>, path: PathBuf, text: &str, allow_special: bool) -> PyResult<Vec<u32>> {
    let tok = tokenizer(&path)?;
    Ok(py.detach(|| tok.encode(text, allow_special)))
}

/// Token ids of the dialog prompt for `messages_json`, each piece encoded separately as the
/// reference chat format does; an image is the `<|image|>` token.
#[pyfunction]
#[pyo3(signature = (path, messages_json, tool_prompt_format="json"))]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 hands arguments over as owned values")]
pub fn tokenize_messages(path: PathBuf, messages_json: &str, tool_prompt_format: &str) -> PyResult<Vec<u32>> {
    let messages: Vec<Message> = read_json("messages", messages_json)?;
    let fmt = self::tool_prompt_format(tool_prompt_format)?;
    Ok(tokenizer(&path)?.encode_dialog(&messages, fmt))
}

/// Text of token ids with the Llama 3 tokenizer at `path`.
#[pyfunction]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 hands arguments over as owned values")]
pub fn detokenize(path: PathBuf, ids: Vec<u32>) -> PyResult<String> {
    Ok(tokenizer(&path)?.decode(&ids))
}

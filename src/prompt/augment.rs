//! Turning a chat request into the messages the model sees: the system prompt with the date and
//! the tool instructions the model family expects, followed by the request's own messages.

use super::PromptStyle;
use super::templates;
use crate::error::{Error, Result};
use crate::types::common::{
    InterleavedTextMedia, Message, SystemMessage, SystemRole, ToolChoice, ToolDefinition, ToolName, ToolPromptFormat,
    UserMessage, UserRole,
};
use crate::types::inference::ChatCompletionRequest;

/// The request's messages with the system prompt (and for 3.1, the custom-tool message) that
/// `style` calls for. `Other` returns the messages unchanged.
pub fn augment_messages(
    req: &ChatCompletionRequest,
    style: PromptStyle,
    today: chrono::NaiveDate,
) -> Result<Vec<Message>> {
    match style {
        PromptStyle::Other => Ok(req.messages.clone()),
        PromptStyle::Llama31 => llama31(req, today),
        PromptStyle::Llama32Text => llama32(req),
    }
}

/// Splits off a leading system message; a second one right after it is refused, as the model
/// only knows one system prompt.
fn split_system(req: &ChatCompletionRequest) -> Result<(Option<&SystemMessage>, &[Message])> {
    if req.tool_choice.unwrap_or_default() != ToolChoice::Auto {
        return Err(Error::invalid("tool_choice: only `auto` is supported by Llama prompt formats"));
    }
    let (system, rest) = match req.messages.split_first() {
        None => return Err(Error::invalid("messages: at least one message is required")),
        Some((Message::System(s), rest)) => (Some(s), rest),
        Some(_) => (None, req.messages.as_slice()),
    };
    if matches!(rest.first(), Some(Message::System(_))) {
        return Err(Error::invalid("messages[1]: only one system message is allowed, and only as the first message"));
    }
    Ok((system, rest))
}

fn custom_tools(tools: &[ToolDefinition]) -> Vec<&ToolDefinition> {
    tools.iter().filter(|t| matches!(t.tool_name, ToolName::Custom(_))).collect()
}

fn format_of(req: &ChatCompletionRequest) -> ToolPromptFormat {
    req.tool_prompt_format.unwrap_or_default()
}

/// Llama 3.1 (and the 3.2 vision models): tools block, knowledge date, the user's system text;
/// custom tools go into a user message of their own.
fn llama31(req: &ChatCompletionRequest, today: chrono::NaiveDate) -> Result<Vec<Message>> {
    let (system, rest) = split_system(req)?;
    let mut sys = String::new();
    if !req.tools.is_empty() {
        sys.push_str(&templates::builtin_tools(&req.tools));
        sys.push('\n');
    }
    sys.push_str(&templates::system_default(today));
    if let Some(s) = system {
        sys.push('\n');
        // A lone image contributes nothing here; inside a list it reads `<media>`.
        match &s.content {
            InterleavedTextMedia::Text(t) => sys.push_str(t),
            InterleavedTextMedia::List(_) => sys.push_str(&s.content.as_text("\n")),
            InterleavedTextMedia::Image(_) => {}
        }
    }
    let mut out = vec![system_message(sys)];
    let custom = custom_tools(&req.tools);
    if !custom.is_empty() {
        let text = match format_of(req) {
            ToolPromptFormat::Json => templates::json_custom_tools(&custom),
            ToolPromptFormat::FunctionTag => templates::function_tag_custom_tools(&custom),
            ToolPromptFormat::PythonList => {
                return Err(Error::invalid(
                    "tool_prompt_format: `python_list` is not supported by Llama 3.1 models; use `json` or `function_tag`",
                ));
            }
        };
        out.push(Message::User(UserMessage {
            role: UserRole::default(),
            content: InterleavedTextMedia::Text(text),
            context: None,
        }));
    }
    out.extend(rest.iter().cloned());
    Ok(out)
}

/// Llama 3.2 text models: builtin tools block, then the `python_list` instructions for custom
/// tools, then the user's system text; no knowledge date. The system message is always sent,
/// even when empty.
fn llama32(req: &ChatCompletionRequest) -> Result<Vec<Message>> {
    let (system, rest) = split_system(req)?;
    let mut sys = String::new();
    let builtin: Vec<ToolDefinition> =
        req.tools.iter().filter(|t| matches!(t.tool_name, ToolName::Builtin(_))).cloned().collect();
    if !builtin.is_empty() {
        sys.push_str(&templates::builtin_tools(&builtin));
        sys.push('\n');
    }
    let custom = custom_tools(&req.tools);
    if !custom.is_empty() {
        let fmt = format_of(req);
        if fmt != ToolPromptFormat::PythonList {
            return Err(Error::invalid(format!(
                "tool_prompt_format: `{fmt}` is not supported by Llama 3.2 text models; use `python_list`"
            )));
        }
        sys.push_str(&templates::python_list_custom_tools(&custom));
        sys.push('\n');
    }
    if let Some(s) = system {
        sys.push_str(&s.content.as_text("\n"));
    }
    let mut out = vec![system_message(sys)];
    out.extend(rest.iter().cloned());
    Ok(out)
}

fn system_message(text: String) -> Message {
    Message::System(SystemMessage { role: SystemRole::default(), content: InterleavedTextMedia::Text(text) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(v: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap_or_else(|e| unreachable!("bad test request: {e}"))
    }

    fn date() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2024, 7, 23).unwrap_or_default()
    }

    fn text(m: &Message) -> String {
        m.content().as_text("")
    }

    #[test]
    fn llama31_without_tools() {
        let req = request(json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}));
        let msgs = augment_messages(&req, PromptStyle::Llama31, date()).unwrap_or_default();
        assert_eq!(msgs.len(), 2);
        assert_eq!(text(&msgs[0]), "Cutting Knowledge Date: December 2023\nToday Date: 23 July 2024\nBe brief.");
    }

    #[test]
    fn llama31_custom_tools_add_a_user_message() {
        let req = request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"tool_name": "brave_search"}, {"tool_name": "f", "parameters": {}}]}));
        let msgs = augment_messages(&req, PromptStyle::Llama31, date()).unwrap_or_default();
        assert_eq!(msgs.len(), 3);
        assert!(text(&msgs[0]).starts_with("Environment: ipython\nTools: brave_search\nCutting Knowledge"));
        assert!(text(&msgs[1]).starts_with("Answer the user's question"));
    }

    #[test]
    fn llama32_empty_system_and_format_checks() {
        let req = request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        let msgs = augment_messages(&req, PromptStyle::Llama32Text, date()).unwrap_or_default();
        assert_eq!(text(&msgs[0]), "");
        let req = request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"tool_name": "f", "parameters": {}}]}));
        let err = augment_messages(&req, PromptStyle::Llama32Text, date()).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("tool_prompt_format")));
    }

    #[test]
    fn refuses_two_system_messages_and_other_choices() {
        let req = request(json!({"model": "m", "messages": [
            {"role": "system", "content": "a"}, {"role": "system", "content": "b"}]}));
        assert!(augment_messages(&req, PromptStyle::Llama31, date()).is_err());
        let req =
            request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}));
        assert!(augment_messages(&req, PromptStyle::Llama32Text, date()).is_err());
        assert!(augment_messages(&req, PromptStyle::Other, date()).is_ok());
    }
}

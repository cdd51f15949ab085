//! The fixed texts of the Llama 3.1/3.2 system and tool prompts, and the code that fills them in.
//!
//! The texts are what the models were fine-tuned on, so every character (quotes, indentation,
//! blank lines, the literal `None` written for a missing description) is kept exactly as the
//! reference generators in `llama_models` produce it.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::pyfmt::{JsonStyle, json_dumps, py_str, truthy};
use crate::types::common::{BuiltinTool, ToolDefinition, ToolName, ToolParamDefinition};

/// First lines of every Llama 3.1 system prompt.
const KNOWLEDGE_DATE: &str = "Cutting Knowledge Date: December 2023\nToday Date: ";

const ENVIRONMENT_LINE: &str = "Environment: ipython\n";
const TOOLS_PREFIX: &str = "Tools: ";

const JSON_HEAD: &str = "Answer the user's question by making use of the following functions if needed.\n\
If none of the function can be used, please say so.\n\
Here is a list of functions in JSON format:\n";
const JSON_TAIL: &str = "\nReturn function calls in JSON format.";

const FUNCTION_TAG_HEAD: &str = "You have access to the following functions:\n\n";
const FUNCTION_TAG_TAIL: &str = "Think very carefully before calling functions.\n\
If you choose to call a function ONLY reply in the following format with no prefix or suffix:\n\
\n\
<function=example_function_name>{\"example_name\": \"example_value\"}</function>\n\
\n\
Reminder:\n\
- If looking for real time information use relevant functions before falling back to brave_search\n\
- Function calls MUST follow the specified format, start with <function= and end with </function>\n\
- Required parameters MUST be specified\n\
- Only call one function at a time\n\
- Put the entire function call reply on one line";

const PYTHON_LIST_HEAD: &str = "You are an expert in composing functions. You are given a question and a set of possible functions.\n\
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n\
If none of the function can be used, point it out. If the given question lacks the parameters required by the function,\n\
also point it out. You should only return the function call in tools call sections.\n\
\n\
If you decide to invoke any of the function(s), you MUST put it in the format of [func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]\n\
You SHOULD NOT include any other text in the response.\n\
\n\
Here is a list of functions in JSON format that you can invoke.\n\
\n\
[\n    ";

/// Python's `str(None)`, which the templates print for a missing description.
const NONE: &str = "None";

/// The knowledge-date block: `today` as `%d %B %Y`, e.g. `23 July 2024`.
pub fn system_default(today: chrono::NaiveDate) -> String {
    format!("{KNOWLEDGE_DATE}{}", today.format("%d %B %Y"))
}

/// The builtin-tools block. `Environment: ipython` appears when any tool is given (builtin or
/// custom); the `Tools:` line names the builtins other than `code_interpreter`, which the
/// environment line alone enables. No newline follows the `Tools:` line.
pub fn builtin_tools(tools: &[ToolDefinition]) -> String {
    let mut out = String::new();
    if !tools.is_empty() {
        out.push_str(ENVIRONMENT_LINE);
    }
    let named: Vec<&str> = tools
        .iter()
        .filter_map(|t| match t.tool_name {
            ToolName::Builtin(BuiltinTool::CodeInterpreter) | ToolName::Custom(_) => None,
            ToolName::Builtin(b) => Some(b.as_str()),
        })
        .collect();
    if !named.is_empty() {
        out.push_str(TOOLS_PREFIX);
        out.push_str(named.join(", ").trim());
    }
    out
}

fn description(d: Option<&String>) -> &str {
    d.map_or(NONE, String::as_str)
}

fn params(t: &ToolDefinition) -> impl Iterator<Item = (&String, &ToolParamDefinition)> {
    t.parameters.iter().flat_map(|p| p.iter())
}

/// Names of the parameters marked required, as the templates' `tojson` writes the list.
fn required_json(t: &ToolDefinition) -> String {
    let names: Vec<Value> =
        params(t).filter(|(_, p)| p.required == Some(true)).map(|(n, _)| Value::String(n.clone())).collect();
    json_dumps(&Value::Array(names), JsonStyle { sort_keys: true, html_safe: true })
}

/// The custom-tool instructions for `tool_prompt_format = json` (a user message in 3.1).
pub fn json_custom_tools(tools: &[&ToolDefinition]) -> String {
    let mut out = String::from(JSON_HEAD);
    for t in tools {
        out.push_str("{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"");
        out.push_str(t.tool_name.as_str());
        out.push_str("\",\n        \"description\": \"");
        out.push_str(description(t.description.as_ref()));
        out.push_str(
            "\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": [",
        );
        let all: Vec<_> = params(t).collect();
        for (i, (name, p)) in all.iter().enumerate() {
            out.push_str("\n                {\n                    \"");
            out.push_str(name);
            out.push_str(
                "\": {\n                        \"type\": \"object\",\n                        \"description\": \"",
            );
            out.push_str(description(p.description.as_ref()));
            out.push_str("\"\n                    }\n                }");
            if i + 1 < all.len() {
                out.push(',');
            }
        }
        out.push_str("\n            ],\n            \"required\": ");
        out.push_str(&required_json(t));
        out.push_str("\n        }\n    }\n}\n");
    }
    out.push_str(JSON_TAIL);
    out
}

/// The custom-tool instructions for `tool_prompt_format = function_tag` (a user message in 3.1).
/// Each tool's parameters are shown as sorted JSON without their defaults.
pub fn function_tag_custom_tools(tools: &[&ToolDefinition]) -> String {
    let mut out = String::from(FUNCTION_TAG_HEAD);
    for t in tools {
        let name = t.tool_name.as_str();
        let desc = description(t.description.as_ref());
        let mut shown = Map::new();
        for (pname, p) in params(t) {
            let mut fields = Map::new();
            fields.insert("param_type".into(), Value::String(p.param_type.clone()));
            fields.insert("description".into(), p.description.clone().map_or(Value::Null, Value::String));
            fields.insert("required".into(), p.required.map_or(Value::Null, Value::Bool));
            shown.insert(pname.clone(), Value::Object(fields));
        }
        let params_json = json_dumps(&Value::Object(shown), JsonStyle { sort_keys: true, html_safe: true });
        let _ = write!(
            out,
            "Use the function '{name}' to '{desc}':\n{{\"name\": \"{name}\", \"description\": \"{desc}\", \"parameters\": {params_json}}}\n\n"
        );
    }
    out.push_str(FUNCTION_TAG_TAIL);
    out
}

/// The custom-tool instructions for `tool_prompt_format = python_list` (part of the 3.2 system
/// prompt). A default is shown, as Python's `str()` of it, only when it is truthy.
pub fn python_list_custom_tools(tools: &[&ToolDefinition]) -> String {
    let blocks: Vec<String> = tools
        .iter()
        .map(|t| {
            let mut b = String::from("{\n        \"name\": \"");
            b.push_str(t.tool_name.as_str());
            b.push_str("\",\n        \"description\": \"");
            b.push_str(description(t.description.as_ref()));
            b.push_str("\",\n        \"parameters\": {\n            \"type\": \"dict\",\n            \"required\": ");
            b.push_str(&required_json(t));
            b.push_str(",\n            \"properties\": {");
            let all: Vec<_> = params(t).collect();
            for (i, (name, p)) in all.iter().enumerate() {
                b.push_str("\n                \"");
                b.push_str(name);
                b.push_str("\": {\n                    \"type\": \"");
                b.push_str(&p.param_type);
                b.push_str("\",\n                    \"description\": \"");
                b.push_str(description(p.description.as_ref()));
                b.push('"');
                if let Some(default) = p.default.as_ref().filter(|d| truthy(d)) {
                    b.push_str(",\n                    \"default\": \"");
                    b.push_str(&py_str(default));
                    b.push('"');
                }
                b.push_str("\n                }");
                if i + 1 < all.len() {
                    b.push(',');
                }
            }
            b.push_str("\n            }\n        }\n    }");
            b
        })
        .collect();
    format!("{PYTHON_LIST_HEAD}{}\n]", blocks.join(",\n    "))
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;

    fn tool(name: &str, params: &[(&str, bool, Option<Value>)]) -> ToolDefinition {
        let map: IndexMap<String, ToolParamDefinition> = params
            .iter()
            .map(|(n, req, default)| {
                (
                    (*n).to_owned(),
                    ToolParamDefinition {
                        param_type: "string".into(),
                        description: Some(format!("the {n}")),
                        required: Some(*req),
                        default: default.clone(),
                    },
                )
            })
            .collect();
        ToolDefinition { tool_name: ToolName::from(name), description: Some("does it".into()), parameters: Some(map) }
    }

    #[test]
    fn builtin_block_lines() {
        let ci = ToolDefinition { tool_name: "code_interpreter".into(), description: None, parameters: None };
        let bs = ToolDefinition { tool_name: "brave_search".into(), description: None, parameters: None };
        let wa = ToolDefinition { tool_name: "wolfram_alpha".into(), description: None, parameters: None };
        assert_eq!(builtin_tools(&[]), "");
        assert_eq!(builtin_tools(std::slice::from_ref(&ci)), "Environment: ipython\n");
        assert_eq!(builtin_tools(&[ci, bs, wa]), "Environment: ipython\nTools: brave_search, wolfram_alpha");
    }

    #[test]
    fn knowledge_date_pads_the_day() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 7, 3).unwrap_or_default();
        assert_eq!(system_default(d), "Cutting Knowledge Date: December 2023\nToday Date: 03 July 2024");
    }

    #[test]
    fn json_prompt_lists_required_params() {
        let t = tool("get_weather", &[("city", true, None), ("unit", false, None)]);
        let text = json_custom_tools(&[&t]);
        assert!(text.contains("\"required\": [\"city\"]\n"));
        assert!(text.ends_with("}\n}\n\nReturn function calls in JSON format."));
    }

    #[test]
    fn function_tag_prompt_sorts_and_drops_defaults() {
        let t = tool("f", &[("b", true, Some(Value::from(3))), ("a", false, None)]);
        let text = function_tag_custom_tools(&[&t]);
        assert!(text.contains(
            r#"{"name": "f", "description": "does it", "parameters": {"a": {"description": "the a", "param_type": "string", "required": false}, "b": {"description": "the b", "param_type": "string", "required": true}}}"#
        ));
    }

    #[test]
    fn python_list_prompt_shows_truthy_defaults() {
        let t = tool("f", &[("x", false, Some(Value::from("celsius"))), ("y", false, Some(Value::from(0)))]);
        let text = python_list_custom_tools(&[&t]);
        assert!(text.contains("\"default\": \"celsius\""));
        assert_eq!(text.matches("\"default\"").count(), 1);
        assert!(text.ends_with("    }\n]"));
    }
}

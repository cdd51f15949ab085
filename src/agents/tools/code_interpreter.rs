//! `code_interpreter`: runs the Python the model wrote (its `code` argument) in the
//! [`Sandbox`], in the session's working directory where the turn's attachments are. The model
//! reads back the run's status (`completed` or `timeout`) followed by its stdout and stderr
//! between `[stdout]`/`[/stdout]` and `[stderr]`/`[/stderr]` lines, with file paths in
//! tracebacks shortened to `line N`. Each figure shown with matplotlib is saved as a PNG in the
//! working directory and returned as an image attachment.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use regex::Regex;

use super::sandbox::{Exit, Outcome, Sandbox, SandboxSettings};
use super::{Tool, ToolContext, ToolOutput, string_arg};
use crate::error::{Error, Result};
use crate::types::agents::Attachment;
use crate::types::common::{ToolCall, Url};
use crate::types::memory::DocumentContent;

const NAME: &str = "code_interpreter";
const PRELUDE: &str = include_str!("code_prelude.py");

pub struct CodeInterpreterTool {
    sandbox: Arc<Sandbox>,
}

impl CodeInterpreterTool {
    /// Finds the sandbox's programs; a missing one is an error naming it.
    pub fn new(settings: &SandboxSettings) -> Result<Self> {
        Ok(Self { sandbox: Arc::new(Sandbox::new(settings)?) })
    }
}

#[async_trait]
impl Tool for CodeInterpreterTool {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self, call: &ToolCall, ctx: &ToolContext) -> Result<ToolOutput> {
        let code = string_arg(call, NAME, "code")?.to_owned();
        if ctx.work_dir.as_os_str().is_empty() || !ctx.work_dir.is_absolute() {
            return Err(Error::internal("the code interpreter was given no absolute working directory"));
        }
        tokio::fs::create_dir_all(&ctx.work_dir).await?;
        let work_dir = tokio::fs::canonicalize(&ctx.work_dir).await?;
        let plot_prefix = format!("matplotlib_{}", uuid::Uuid::new_v4().simple());
        let program = prelude(&work_dir, &plot_prefix, &code);
        let sandbox = Arc::clone(&self.sandbox);
        let dir = work_dir.clone();
        let outcome = tokio::task::spawn_blocking(move || sandbox.run(&dir, &program, &[]))
            .await
            .map_err(|e| Error::internal(format!("the code interpreter's run stopped: {e}")))??;
        let mut output = ToolOutput::text(call, describe(&outcome));
        output.attachments = plots(&work_dir, &plot_prefix)
            .into_iter()
            .map(|path| Attachment {
                content: DocumentContent::Url(Url { uri: format!("file://{}", path.display()) }),
                mime_type: "image/png".to_owned(),
            })
            .collect();
        Ok(output)
    }
}

/// The program fed to the interpreter: the prelude with the cell and the plot names filled in.
fn prelude(work_dir: &Path, plot_prefix: &str, code: &str) -> String {
    let literal = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    PRELUDE
        .replace("@@WORK_DIR@@", &literal(&work_dir.to_string_lossy()))
        .replace("@@PLOT_PREFIX@@", &literal(plot_prefix))
        .replace("@@CODE@@", &literal(code))
}

static TRACE_PATH: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#"File "([^"]+)", line (\d+)"#).ok());

/// The text the model reads: status, then the non-empty streams in brackets.
pub fn describe(outcome: &Outcome) -> String {
    let (status, stdout, stderr) = match outcome.exit {
        Exit::TimedOut => ("timeout", "Timed out".to_owned(), "Timed out".to_owned()),
        Exit::Code(_) => ("completed", outcome.stdout.trim().to_owned(), shorten_paths(outcome.stderr.trim())),
        Exit::Signal(sig) => {
            let mut stderr = shorten_paths(outcome.stderr.trim());
            if !stderr.is_empty() {
                stderr.push('\n');
            }
            let _ = write!(stderr, "The process was killed by signal {sig}{}.", signal_reason(sig));
            ("completed", outcome.stdout.trim().to_owned(), stderr)
        }
    };
    let mut pieces = vec![status.to_owned()];
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if !text.is_empty() {
            pieces.push(format!("[{name}]"));
            pieces.push(text);
            pieces.push(format!("[/{name}]"));
        }
    }
    pieces.join("\n")
}

fn shorten_paths(text: &str) -> String {
    match TRACE_PATH.as_ref() {
        Some(re) => re.replace_all(text, "line $2").into_owned(),
        None => text.to_owned(),
    }
}

fn signal_reason(sig: i32) -> &'static str {
    match sig {
        9 => " (SIGKILL)",
        11 => " (SIGSEGV: invalid memory access)",
        6 => " (SIGABRT)",
        24 => " (SIGXCPU: CPU time limit reached)",
        25 => " (SIGXFSZ: file size limit reached)",
        _ => "",
    }
}

/// The figures this run saved: regular files (never links) named after the run, in order.
fn plots(work_dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(work_dir) else { return Vec::new() };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n: u64 = name.strip_prefix(prefix)?.strip_prefix('_')?.strip_suffix(".png")?.parse().ok()?;
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            meta.file_type().is_file().then(|| (n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_follows_the_reference_format() {
        let o =
            |exit, stdout: &str, stderr: &str| Outcome { exit, stdout: stdout.to_owned(), stderr: stderr.to_owned() };
        assert_eq!(describe(&o(Exit::Code(0), "4\n", "")), "completed\n[stdout]\n4\n[/stdout]");
        assert_eq!(describe(&o(Exit::Code(0), "", "")), "completed");
        assert_eq!(
            describe(&o(
                Exit::Code(1),
                "",
                "Traceback (most recent call last):\n  File \"<cell>\", line 2, in <module>\nZeroDivisionError: division by zero\n"
            )),
            "completed\n[stderr]\nTraceback (most recent call last):\n  line 2, in <module>\nZeroDivisionError: division by zero\n[/stderr]"
        );
        assert_eq!(
            describe(&o(Exit::TimedOut, "partial", "")),
            "timeout\n[stdout]\nTimed out\n[/stdout]\n[stderr]\nTimed out\n[/stderr]"
        );
        assert!(
            describe(&o(Exit::Signal(24), "", "")).ends_with("signal 24 (SIGXCPU: CPU time limit reached).\n[/stderr]")
        );
    }

    #[test]
    fn the_cell_travels_as_a_string_literal() {
        let p = prelude(Path::new("/w"), "matplotlib_x", "print(\"a\\n\")\n'''é'''");
        assert!(p.contains(r#"compile("print(\"a\\n\")\n'''é'''", "<cell>", "exec")"#), "{p}");
        assert!(p.contains(r#"work_dir = "/w""#));
        assert!(!p.contains("@@"));
    }
}

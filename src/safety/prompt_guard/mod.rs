//! The `prompt_guard` shield: Prompt Guard, a small classifier of prompt injections and
//! jailbreaks, run in process on the last message of a conversation.
//!
//! `model` loads the classifier (a DeBERTa-v2 sequence classifier) and reads text with it; this
//! module turns its class probabilities into a verdict, as the reference shield did: softmax of
//! the logits; `injection` mode flags when p(INJECTION) + p(JAILBREAK) exceeds the threshold,
//! `jailbreak` mode when p(JAILBREAK) does.

pub mod model;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

pub use model::{Classifier, LABELS, Probabilities, REQUIRED_FILES, missing_files};

use super::Verdict;
use crate::error::{Error, Result};
use crate::prompt::float_repr;
use crate::types::common::{JsonObject, Message};
use crate::types::safety::ViolationLevel;
use crate::types::shields::ShieldDefWithProvider;

/// The folder under `<config dir>/checkpoints/` the model is looked for in by default.
pub const DEFAULT_MODEL: &str = "Prompt-Guard-86M";
pub const DEFAULT_THRESHOLD: f64 = 0.9;
/// What a flagged conversation is answered with.
pub const USER_MESSAGE: &str = "Sorry, I cannot do this.";
/// The shield parameter choosing the mode, as upstream named it.
pub const TYPE_PARAM: &str = "prompt_guard_type";
/// The shield parameter overriding the provider's threshold.
pub const THRESHOLD_PARAM: &str = "threshold";

/// What the shield flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Text that carries instructions at all (INJECTION or JAILBREAK): for third-party data.
    Injection,
    /// Text that tries to override the model's safety (JAILBREAK): for user prompts.
    Jailbreak,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "injection" => Some(Self::Injection),
            "jailbreak" => Some(Self::Jailbreak),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injection => "injection",
            Self::Jailbreak => "jailbreak",
        }
    }

    /// The score compared with the threshold, summed in double precision as upstream did.
    fn score(self, p: Probabilities) -> f64 {
        match self {
            Self::Injection => f64::from(p.injection()) + f64::from(p.jailbreak()),
            Self::Jailbreak => f64::from(p.jailbreak()),
        }
    }
}

/// The provider config's Prompt Guard fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model_dir: PathBuf,
    pub threshold: f64,
    pub mode: Mode,
}

impl Settings {
    /// `at` is the config's path for messages (`providers.safety[`id`].config`). `model_dir`
    /// `None` means `<config dir>/checkpoints/Prompt-Guard-86M`.
    pub fn new(model_dir: Option<&str>, threshold: Option<f64>, mode: Option<&str>, at: &str) -> Result<Self> {
        let model_dir = match model_dir.map(str::trim) {
            None => crate::config::config_dir().join("checkpoints").join(DEFAULT_MODEL),
            Some("") => {
                return Err(Error::config(format!(
                    "`{at}.prompt_guard_model_dir` is empty; leave it out for the default \
                     `<config dir>/checkpoints/{DEFAULT_MODEL}`"
                )));
            }
            Some(dir) => crate::config::expand_home(dir),
        };
        let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD);
        check_threshold(threshold).map_err(|why| Error::config(format!("`{at}.prompt_guard_threshold`: {why}")))?;
        let mode = match mode {
            None => Mode::Injection,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                Error::config(format!("`{at}.prompt_guard_type` is `{m}`; it must be `injection` or `jailbreak`"))
            })?,
        };
        Ok(Self { model_dir, threshold, mode })
    }
}

fn check_threshold(t: f64) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&t) { Ok(()) } else { Err(format!("{t} is not a probability between 0 and 1")) }
}

/// The mode and threshold one shield runs with: its params over the provider's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShieldSettings {
    pub mode: Mode,
    pub threshold: f64,
}

/// The loaded shield.
pub struct PromptGuard {
    classifier: Arc<Classifier>,
    settings: Settings,
}

impl PromptGuard {
    /// Checks the model folder and loads the model on a blocking thread. `field` names the
    /// config field the folder came from, for the error when it is missing or incomplete.
    pub async fn load(settings: Settings, field: &str) -> Result<Self> {
        let dir = settings.model_dir.clone();
        check_folder(&dir, field)?;
        let classifier = tokio::task::spawn_blocking(move || {
            let _work = crate::native_work::Work::enter();
            Classifier::load(&dir)
        })
        .await
        .map_err(|e| Error::internal(format!("Prompt Guard loading stopped: {e}")))??;
        Ok(Self::new(Arc::new(classifier), settings))
    }

    pub fn new(classifier: Arc<Classifier>, settings: Settings) -> Self {
        Self { classifier, settings }
    }

    /// The mode and threshold of `shield`: `params.prompt_guard_type` and `params.threshold`
    /// when given, else the provider's.
    pub fn shield_settings(&self, shield: &ShieldDefWithProvider) -> Result<ShieldSettings> {
        let bad = |param: &str, why: String| {
            Error::invalid(format!("shield `{}`: `params.{param}` {why}", shield.identifier))
        };
        let mode = match shield.params.get(TYPE_PARAM) {
            None | Some(Value::Null) => self.settings.mode,
            Some(Value::String(s)) => Mode::parse(s)
                .ok_or_else(|| bad(TYPE_PARAM, format!("is `{s}`; it must be `injection` or `jailbreak`")))?,
            Some(other) => return Err(bad(TYPE_PARAM, format!("must be `injection` or `jailbreak`, not {other}"))),
        };
        let threshold = match shield.params.get(THRESHOLD_PARAM) {
            None | Some(Value::Null) => self.settings.threshold,
            Some(v) => {
                let t = v.as_f64().ok_or_else(|| bad(THRESHOLD_PARAM, format!("must be a number, not {v}")))?;
                check_threshold(t).map_err(|why| bad(THRESHOLD_PARAM, why))?;
                t
            }
        };
        Ok(ShieldSettings { mode, threshold })
    }

    /// Classifies the text of the last message on a blocking thread and judges it.
    pub async fn run(&self, shield: &ShieldDefWithProvider, messages: &[Message]) -> Result<Verdict> {
        let settings = self.shield_settings(shield)?;
        let Some(last) = messages.last() else {
            return Err(Error::field(&["body", "messages"], "at least one message is required", "value_error"));
        };
        let text = last.content().as_text(" ");
        let classifier = Arc::clone(&self.classifier);
        let windows = tokio::task::spawn_blocking(move || {
            let _work = crate::native_work::Work::enter();
            classifier.classify(&text)
        })
        .await
        .map_err(|e| Error::internal(format!("Prompt Guard stopped: {e}")))??;
        Ok(judge(&windows, settings))
    }
}

/// The error for a model folder that is missing or lacks files, naming the config field.
pub fn check_folder(dir: &Path, field: &str) -> Result<()> {
    let missing = missing_files(dir);
    if missing.is_empty() {
        return Ok(());
    }
    let what = if dir.is_dir() { format!("lacks {}", missing.join(", ")) } else { "does not exist".to_owned() };
    Err(Error::config(format!(
        "`{field}`: the Prompt Guard model folder `{}` {what}. Put the Hugging Face files of \
         meta-llama/Prompt-Guard-86M ({}) there, or point `{field}` at a folder that has them",
        dir.display(),
        REQUIRED_FILES.join(", ")
    )))
}

/// The verdict on a text read in `windows`: the window scoring highest for the mode decides, and
/// its probabilities are reported.
pub fn judge(windows: &[Probabilities], settings: ShieldSettings) -> Verdict {
    let mode = settings.mode;
    let Some(worst) = windows.iter().copied().reduce(|a, b| if mode.score(b) > mode.score(a) { b } else { a }) else {
        return Verdict::Safe;
    };
    if mode.score(worst) <= settings.threshold {
        return Verdict::Safe;
    }
    let malicious = float_repr(f64::from(worst.jailbreak()));
    let violation_type = match mode {
        Mode::Injection => {
            format!("prompt_injection:embedded={},malicious={malicious}", float_repr(f64::from(worst.injection())))
        }
        Mode::Jailbreak => format!("prompt_injection:malicious={malicious}"),
    };
    let mut details = JsonObject::new();
    details.insert(TYPE_PARAM.into(), Value::from(mode.as_str()));
    let scores: JsonObject =
        LABELS.iter().zip(worst.0).map(|(label, p)| ((*label).to_owned(), json!(f64::from(p)))).collect();
    details.insert("scores".into(), Value::Object(scores));
    Verdict::Violation {
        level: ViolationLevel::Error,
        user_message: Some(USER_MESSAGE.to_owned()),
        violation_type,
        details,
    }
}

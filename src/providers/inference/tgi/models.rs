//! Which Llama model a Hugging Face repository holds. A TGI server reports the repository it
//! loaded (`model_id` in `/info`); the provider lists that model under its Llama descriptor, the
//! name the rest of the stack (prompt formats, safety shields) knows it by.

use serde_json::json;

use crate::types::common::JsonObject;
use crate::types::models::{ModelDef, ModelDefWithProvider};

/// The metadata key carrying the repository a listed model comes from.
pub(super) const REPO_KEY: &str = "huggingface_repo";

/// Repository (as `llama_models` names it) and descriptor, for every Llama model published on
/// Hugging Face. Where one repository holds several checkpoints (405B in bf16 for 8 or 16 GPUs),
/// the one `llama_models` lists last is kept, as its own repository-to-descriptor map does.
const REPOS: &[(&str, &str)] = &[
    ("meta-llama/Llama-2-7b", "Llama-2-7b"),
    ("meta-llama/Llama-2-13b", "Llama-2-13b"),
    ("meta-llama/Llama-2-70b", "Llama-2-70b"),
    ("meta-llama/Llama-2-7b-chat", "Llama-2-7b-chat"),
    ("meta-llama/Llama-2-13b-chat", "Llama-2-13b-chat"),
    ("meta-llama/Llama-2-70b-chat", "Llama-2-70b-chat"),
    ("meta-llama/Llama-3-8B", "Llama-3-8B"),
    ("meta-llama/Llama-3-70B", "Llama-3-70B"),
    ("meta-llama/Llama-3-8B-Instruct", "Llama-3-8B-Instruct"),
    ("meta-llama/Llama-3-70B-Instruct", "Llama-3-70B-Instruct"),
    ("meta-llama/Llama-3.1-8B", "Llama3.1-8B"),
    ("meta-llama/Llama-3.1-70B", "Llama3.1-70B"),
    ("meta-llama/Llama-3.1-405B", "Llama3.1-405B:bf16-mp16"),
    ("meta-llama/Llama-3.1-405B-FP8", "Llama3.1-405B"),
    ("meta-llama/Llama-3.1-8B-Instruct", "Llama3.1-8B-Instruct"),
    ("meta-llama/Llama-3.1-70B-Instruct", "Llama3.1-70B-Instruct"),
    ("meta-llama/Llama-3.1-405B-Instruct", "Llama3.1-405B-Instruct:bf16-mp16"),
    ("meta-llama/Llama-3.1-405B-Instruct-FP8", "Llama3.1-405B-Instruct"),
    ("meta-llama/Llama-3.2-1B", "Llama3.2-1B"),
    ("meta-llama/Llama-3.2-3B", "Llama3.2-3B"),
    ("meta-llama/Llama-3.2-11B-Vision", "Llama3.2-11B-Vision"),
    ("meta-llama/Llama-3.2-90B-Vision", "Llama3.2-90B-Vision"),
    ("meta-llama/Llama-3.2-1B-Instruct", "Llama3.2-1B-Instruct"),
    ("meta-llama/Llama-3.2-3B-Instruct", "Llama3.2-3B-Instruct"),
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", "Llama3.2-11B-Vision-Instruct"),
    ("meta-llama/Llama-3.2-90B-Vision-Instruct", "Llama3.2-90B-Vision-Instruct"),
    ("meta-llama/Llama-Guard-3-11B-Vision", "Llama-Guard-3-11B-Vision"),
    ("meta-llama/Llama-Guard-3-1B-INT4", "Llama-Guard-3-1B:int4-mp1"),
    ("meta-llama/Llama-Guard-3-1B", "Llama-Guard-3-1B"),
    ("meta-llama/Llama-Guard-3-8B", "Llama-Guard-3-8B"),
    ("meta-llama/Llama-Guard-3-8B-INT8", "Llama-Guard-3-8B:int8-mp1"),
    ("meta-llama/Llama-Guard-2-8B", "Llama-Guard-2-8B"),
];

/// The names the 3 and 3.1 repositories had before they were renamed; TGI servers started with
/// the old name still report it.
const RENAMED: &[(&str, &str)] = &[
    ("meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-3-8B"),
    ("meta-llama/Meta-Llama-3-70B", "meta-llama/Llama-3-70B"),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Llama-3-8B-Instruct"),
    ("meta-llama/Meta-Llama-3-70B-Instruct", "meta-llama/Llama-3-70B-Instruct"),
    ("meta-llama/Meta-Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
    ("meta-llama/Meta-Llama-3.1-70B", "meta-llama/Llama-3.1-70B"),
    ("meta-llama/Meta-Llama-3.1-405B", "meta-llama/Llama-3.1-405B"),
    ("meta-llama/Meta-Llama-3.1-405B-FP8", "meta-llama/Llama-3.1-405B-FP8"),
    ("meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-405B-Instruct"),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8", "meta-llama/Llama-3.1-405B-Instruct-FP8"),
];

/// The descriptor of the Llama model in `repo`. Hub names are matched without regard to case (the
/// Hub treats them so); a local path, as TGI reports a model it loaded from disk, is matched by
/// its last component.
pub(super) fn descriptor_for(repo: &str) -> Option<&'static str> {
    let repo = repo.trim().trim_end_matches('/');
    let exact = |name: &str| {
        let name = RENAMED.iter().find(|(old, _)| old.eq_ignore_ascii_case(name)).map_or(name, |(_, new)| *new);
        REPOS.iter().find(|(r, _)| r.eq_ignore_ascii_case(name)).map(|(_, d)| *d)
    };
    exact(repo).or_else(|| {
        let last = repo.rsplit('/').next().unwrap_or(repo);
        exact(&format!("meta-llama/{last}"))
    })
}

/// Whether a descriptor names a model that speaks Llama 3's chat format (tool calls included):
/// Llama 3, 3.1, 3.2 and the Llama Guard models built on them.
pub(super) fn is_llama3(descriptor: &str) -> bool {
    ["Llama-3-", "Llama3.", "Llama-Guard-3-", "Llama-Guard-2-"].iter().any(|p| descriptor.starts_with(p))
}

/// The one model a server serves.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Served {
    /// The repository the server reports (or the config names).
    pub repo: String,
    /// What it is listed as: its Llama descriptor, or the repository when it is not a Llama model
    /// we know.
    pub model: String,
    /// The reply is Llama 3 text, parsed for tool calls.
    pub llama3: bool,
    /// Prompt and reply together, in tokens, when the server says.
    pub max_total_tokens: Option<u64>,
}

impl Served {
    pub fn new(repo: &str, max_total_tokens: Option<u64>) -> Self {
        let repo = repo.trim().to_owned();
        let descriptor = descriptor_for(&repo);
        Self {
            model: descriptor.map_or_else(|| repo.clone(), str::to_owned),
            llama3: descriptor.is_some_and(is_llama3),
            repo,
            max_total_tokens,
        }
    }

    pub fn listing(&self) -> ModelDef {
        let mut metadata = JsonObject::new();
        metadata.insert(REPO_KEY.into(), json!(self.repo));
        ModelDef { identifier: self.model.clone(), llama_model: self.model.clone(), metadata }
    }

    /// Whether a registration is for this model: its `llama_model` or identifier is the
    /// descriptor or the repository, or its `metadata.huggingface_repo` is the repository.
    pub fn accepts(&self, model: &ModelDefWithProvider) -> bool {
        let same_repo = |name: &str| {
            name.trim().eq_ignore_ascii_case(&self.repo) || descriptor_for(name) == Some(self.model.as_str())
        };
        let names = [model.llama_model.as_str(), model.identifier.as_str()];
        names.iter().any(|n| *n == self.model || same_repo(n))
            || model.metadata.get(REPO_KEY).and_then(|v| v.as_str()).is_some_and(same_repo)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn repositories_map_to_descriptors() {
        assert_eq!(descriptor_for("meta-llama/Llama-3.1-8B-Instruct"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(descriptor_for("meta-llama/Meta-Llama-3.1-8B-Instruct"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(descriptor_for("META-LLAMA/llama-3.2-3b-instruct"), Some("Llama3.2-3B-Instruct"));
        assert_eq!(descriptor_for("/data/Meta-Llama-3.1-70B-Instruct/"), Some("Llama3.1-70B-Instruct"));
        assert_eq!(descriptor_for("meta-llama/Llama-3.1-405B-Instruct"), Some("Llama3.1-405B-Instruct:bf16-mp16"));
        assert_eq!(descriptor_for("meta-llama/Llama-Guard-3-1B"), Some("Llama-Guard-3-1B"));
        assert_eq!(descriptor_for("mistralai/Mistral-7B-Instruct-v0.3"), None);
    }

    #[test]
    fn llama3_family() {
        assert!(is_llama3("Llama3.1-8B-Instruct") && is_llama3("Llama-3-8B-Instruct"));
        assert!(is_llama3("Llama-Guard-3-8B") && is_llama3("Llama3.2-11B-Vision-Instruct"));
        assert!(!is_llama3("Llama-2-7b-chat") && !is_llama3("mistralai/Mistral-7B-Instruct-v0.3"));
    }

    fn reg(identifier: &str, llama_model: &str, repo: Option<&str>) -> ModelDefWithProvider {
        let mut metadata = JsonObject::new();
        if let Some(r) = repo {
            metadata.insert(REPO_KEY.into(), json!(r));
        }
        ModelDefWithProvider {
            identifier: identifier.into(),
            llama_model: llama_model.into(),
            metadata,
            provider_id: "tgi".into(),
        }
    }

    #[test]
    fn served_model_is_listed_and_accepted_under_its_names() {
        let s = Served::new("meta-llama/Meta-Llama-3.1-8B-Instruct", Some(8192));
        assert_eq!((s.model.as_str(), s.llama3), ("Llama3.1-8B-Instruct", true));
        let listed = s.listing();
        assert_eq!(listed.identifier, "Llama3.1-8B-Instruct");
        assert_eq!(listed.metadata[REPO_KEY], "meta-llama/Meta-Llama-3.1-8B-Instruct");
        assert!(s.accepts(&reg("Llama3.1-8B-Instruct", "Llama3.1-8B-Instruct", None)));
        assert!(s.accepts(&reg("chat", "Llama3.1-8B-Instruct", None)));
        assert!(s.accepts(&reg("meta-llama/Llama-3.1-8B-Instruct", "x", None)));
        assert!(s.accepts(&reg("chat", "x", Some("meta-llama/meta-llama-3.1-8b-instruct"))));
        assert!(!s.accepts(&reg("Llama3.1-70B-Instruct", "Llama3.1-70B-Instruct", None)));

        let other = Served::new("mistralai/Mistral-7B-Instruct-v0.3", None);
        assert_eq!((other.model.as_str(), other.llama3), ("mistralai/Mistral-7B-Instruct-v0.3", false));
        assert!(other.accepts(&reg("m", "mistralai/Mistral-7B-Instruct-v0.3", None)));
        assert!(!other.accepts(&reg("m", "Llama3.1-8B-Instruct", None)));
    }
}

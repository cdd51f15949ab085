//! Which Ollama tags hold which Llama models: upstream's table of fp16 tags, plus the short and
//! quantized tags people usually pull for the same weights.

/// Llama descriptor, the tag upstream maps it to, and other tags of the same instruct weights.
const KNOWN: &[(&str, &str, &[&str])] = &[
    ("Llama3.1-8B-Instruct", "llama3.1:8b-instruct-fp16", &["llama3.1:8b", "llama3.1:latest"]),
    ("Llama3.1-70B-Instruct", "llama3.1:70b-instruct-fp16", &["llama3.1:70b"]),
    ("Llama3.2-1B-Instruct", "llama3.2:1b-instruct-fp16", &["llama3.2:1b"]),
    ("Llama3.2-3B-Instruct", "llama3.2:3b-instruct-fp16", &["llama3.2:3b", "llama3.2:latest"]),
    ("Llama-Guard-3-8B", "xe/llamaguard3:latest", &["llama-guard3:8b", "llama-guard3:latest"]),
];

/// A tag as Ollama compares it: a name without a tag means `:latest`.
pub(super) fn normalize(tag: &str) -> String {
    let name = tag.rsplit('/').next().unwrap_or(tag);
    if name.contains(':') { tag.to_owned() } else { format!("{tag}:latest") }
}

/// The Llama descriptor whose weights `tag` holds, if we know it.
pub(super) fn llama_for_tag(tag: &str) -> Option<&'static str> {
    let tag = normalize(tag);
    KNOWN.iter().find_map(|(llama, canonical, aliases)| {
        let exact = *canonical == tag || aliases.contains(&tag.as_str());
        // Other quantizations of the instruct weights, e.g. `llama3.1:8b-instruct-q4_K_M`.
        let variant = canonical
            .strip_suffix("fp16")
            .is_some_and(|prefix| prefix.ends_with("-instruct-") && tag.starts_with(prefix));
        (exact || variant).then_some(*llama)
    })
}

/// The tag upstream uses for a Llama descriptor.
pub(super) fn canonical_tag(llama_model: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(llama, ..)| *llama == llama_model).map(|(_, canonical, _)| *canonical)
}

/// Whether `tag` is the one upstream maps its descriptor to.
pub(super) fn is_canonical(tag: &str) -> bool {
    let tag = normalize(tag);
    KNOWN.iter().any(|(_, canonical, _)| *canonical == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_tags_and_short_forms_map_to_descriptors() {
        assert_eq!(llama_for_tag("llama3.1:8b-instruct-fp16"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(llama_for_tag("llama3.1:8b"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(llama_for_tag("llama3.1"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(llama_for_tag("llama3.1:latest"), Some("Llama3.1-8B-Instruct"));
        assert_eq!(llama_for_tag("llama3.1:70b-instruct-q4_0"), Some("Llama3.1-70B-Instruct"));
        assert_eq!(llama_for_tag("llama3.2:1b"), Some("Llama3.2-1B-Instruct"));
        assert_eq!(llama_for_tag("llama3.2:3b-instruct-q8_0"), Some("Llama3.2-3B-Instruct"));
        assert_eq!(llama_for_tag("xe/llamaguard3"), Some("Llama-Guard-3-8B"));
        assert_eq!(llama_for_tag("llama3.1:8b-text-fp16"), None);
        assert_eq!(llama_for_tag("qwen2.5:7b"), None);
    }

    #[test]
    fn descriptors_map_back_to_upstream_tags() {
        assert_eq!(canonical_tag("Llama3.2-3B-Instruct"), Some("llama3.2:3b-instruct-fp16"));
        assert_eq!(canonical_tag("Llama-Guard-3-8B"), Some("xe/llamaguard3:latest"));
        assert_eq!(canonical_tag("Llama3.1-405B-Instruct"), None);
        assert!(is_canonical("llama3.1:70b-instruct-fp16"));
        assert!(!is_canonical("llama3.1:70b"));
        assert_eq!(normalize("ns/model"), "ns/model:latest");
        assert_eq!(normalize("host:5000/ns/model"), "host:5000/ns/model:latest");
    }
}

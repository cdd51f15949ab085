//! Where the stack keeps its files: `~/.llama` as upstream, or `$LLAMA_STACK_CONFIG_DIR`.

use std::path::PathBuf;

/// The base folder (`LLAMA_STACK_CONFIG_DIR`, default `~/.llama`).
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LLAMA_STACK_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".llama")
}

/// Runtime state (kv stores) lives here.
pub fn runtime_dir() -> PathBuf {
    config_dir().join("runtime")
}

/// Expands a leading `~/` (upstream left it literal and created a `./~` folder).
pub fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(path)
}

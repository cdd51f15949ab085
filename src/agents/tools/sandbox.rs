//! Runs a Python program in a sandbox: bubblewrap (`bwrap`) gives it private mount, network,
//! PID, IPC and UTS namespaces, a root made of a read-only view of the system's `/usr` (and the
//! interpreter's own prefix), a fresh `/proc`, `/dev` and size-limited `/tmp`, and one writable
//! directory, the session's working directory. `prlimit` (util-linux) sets resource limits on
//! the whole tree: address space, CPU seconds, file size, open files and process count. A wall
//! clock timeout kills it; since the program is the sandbox's PID namespace, killing bwrap takes
//! every process it started down with it.
//!
//! When the server runs as root, bwrap runs without a user namespace and `setpriv`
//! (util-linux) drops the program to an unprivileged uid picked per run from
//! `sandbox_uid_base` (so each run's process limit is its own) and the shared group
//! `sandbox_gid` (so later runs can change files earlier ones made). Otherwise bwrap makes a
//! user namespace and the program keeps the server's uid; the process limit then counts the
//! server's own tasks too, which is accounted for when the limit is set.
//!
//! Nothing ever runs unsandboxed: a missing bwrap, prlimit or setpriv is an error.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};

const TOOL: &str = "code_interpreter";

/// The `tools.code_interpreter` section of the agents provider's config, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    python: Option<String>,
    bwrap: Option<String>,
    prlimit: Option<String>,
    setpriv: Option<String>,
    timeout: Option<f64>,
    cpu_seconds: Option<u64>,
    memory_mb: Option<u64>,
    max_processes: Option<u64>,
    max_file_mb: Option<u64>,
    tmp_mb: Option<u64>,
    max_output_bytes: Option<usize>,
    sandbox_uid_base: Option<u32>,
    sandbox_gid: Option<u32>,
}

/// The sandbox's programs and limits.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The interpreter (`python`, default `/usr/bin/python3`). A venv's python works: its venv
    /// and its base installation are mounted read-only.
    pub python: PathBuf,
    /// bubblewrap (`bwrap`, looked up in `PATH`).
    pub bwrap: PathBuf,
    /// util-linux's `prlimit` (looked up in `PATH`).
    pub prlimit: PathBuf,
    /// util-linux's `setpriv` (looked up in `PATH`; used when the server runs as root).
    pub setpriv: PathBuf,
    /// Wall-clock limit of one run (`timeout`, seconds, default 20).
    pub timeout: Duration,
    /// CPU time limit (`cpu_seconds`, default the timeout rounded up).
    pub cpu_seconds: u64,
    /// Address-space limit of each process (`memory_mb`, default 1024).
    pub memory_bytes: u64,
    /// Processes and threads the program may have at once (`max_processes`, default 32).
    pub max_processes: u64,
    /// Largest file it may write (`max_file_mb`, default 64).
    pub max_file_bytes: u64,
    /// Size of its private `/tmp` (`tmp_mb`, default 64).
    pub tmp_bytes: u64,
    /// Output kept per stream; the rest is dropped with a note (`max_output_bytes`, default 1 MiB).
    pub max_output_bytes: usize,
    /// First uid handed to runs when the server is root (`sandbox_uid_base`, default 2000000000).
    pub uid_base: u32,
    /// Group of every run when the server is root (`sandbox_gid`, default 2000000000).
    pub gid: u32,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            python: PathBuf::from("/usr/bin/python3"),
            bwrap: PathBuf::from("bwrap"),
            prlimit: PathBuf::from("prlimit"),
            setpriv: PathBuf::from("setpriv"),
            timeout: Duration::from_secs(20),
            cpu_seconds: 20,
            memory_bytes: 1024 << 20,
            max_processes: 32,
            max_file_bytes: 64 << 20,
            tmp_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            uid_base: 2_000_000_000,
            gid: 2_000_000_000,
        }
    }
}

/// How many runs may hold a uid at once (per server process).
const UID_SLOTS: u32 = 4096;

pub(super) fn positive_seconds(s: f64, field: &str) -> Result<Duration> {
    if s.is_finite() && s > 0.0 && s < 1e9 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(Error::config(format!("agents provider config `{field}`: must be a positive number of seconds, got {s}")))
    }
}

fn positive(v: Option<u64>, default: u64, field: &str) -> Result<u64> {
    match v {
        None => Ok(default),
        Some(0) => {
            Err(Error::config(format!("agents provider config `tools.code_interpreter.{field}`: must be above 0")))
        }
        Some(n) => Ok(n),
    }
}

impl SandboxSettings {
    pub(super) fn from_config(c: SandboxConfig) -> Result<Self> {
        let d = Self::default();
        let timeout = match c.timeout {
            None => d.timeout,
            Some(s) => positive_seconds(s, "tools.code_interpreter.timeout")?,
        };
        let mb = |v: Option<u64>, default: u64, field: &str| -> Result<u64> {
            let n = positive(v.map(|m| m.saturating_mul(1 << 20)), default, field)?;
            Ok(n)
        };
        let uid_base = c.sandbox_uid_base.unwrap_or(d.uid_base);
        if uid_base == 0 || uid_base.checked_add(UID_SLOTS).is_none() {
            return Err(Error::config(format!(
                "agents provider config `tools.code_interpreter.sandbox_uid_base`: must be above 0 and leave room for {UID_SLOTS} uids"
            )));
        }
        Ok(Self {
            python: c.python.map_or(d.python, PathBuf::from),
            bwrap: c.bwrap.map_or(d.bwrap, PathBuf::from),
            prlimit: c.prlimit.map_or(d.prlimit, PathBuf::from),
            setpriv: c.setpriv.map_or(d.setpriv, PathBuf::from),
            timeout,
            cpu_seconds: positive(
                c.cpu_seconds,
                timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0),
                "cpu_seconds",
            )?,
            memory_bytes: mb(c.memory_mb, d.memory_bytes, "memory_mb")?,
            max_processes: positive(c.max_processes, d.max_processes, "max_processes")?,
            max_file_bytes: mb(c.max_file_mb, d.max_file_bytes, "max_file_mb")?,
            tmp_bytes: mb(c.tmp_mb, d.tmp_bytes, "tmp_mb")?,
            max_output_bytes: match c.max_output_bytes {
                Some(0) => {
                    return Err(Error::config(
                        "agents provider config `tools.code_interpreter.max_output_bytes`: must be above 0",
                    ));
                }
                Some(n) => n,
                None => d.max_output_bytes,
            },
            uid_base,
            gid: c.sandbox_gid.unwrap_or(d.gid),
        })
    }
}

/// The sandbox with its programs found.
#[derive(Debug, Clone)]
pub struct Sandbox {
    settings: SandboxSettings,
    bwrap: PathBuf,
    prlimit: PathBuf,
    /// Set when the server is root: the program then drops to a per-run uid.
    setpriv: Option<PathBuf>,
    python: PathBuf,
    /// Directories outside `/usr` the interpreter needs (its prefix, its venv).
    python_dirs: Vec<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this code.
    Code(i32),
    /// The program was killed by this signal (a resource limit, usually).
    Signal(i32),
    /// The wall-clock limit passed and the sandbox was killed.
    TimedOut,
}

/// What a run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

fn unavailable(message: String) -> Error {
    Error::Unavailable { provider: TOOL.to_owned(), message }
}

/// `name` as given when it has a slash, else its first executable match in `PATH`.
fn find_program(name: &Path, field: &str, package: &str) -> Result<PathBuf> {
    let missing = |what: &str| {
        unavailable(format!(
            "the sandbox needs `{}` ({what}; install the `{package}` package or set `tools.code_interpreter.{field}`); code is never run outside the sandbox",
            name.display()
        ))
    };
    let is_exe = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if name.components().count() > 1 || name.is_absolute() {
        return if is_exe(name) { Ok(name.to_path_buf()) } else { Err(missing("not found or not executable")) };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
        .ok_or_else(|| missing("not found in PATH"))
}

/// The uid of this process (the owner of `/proc/self`).
fn own_uid() -> Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

impl Sandbox {
    /// Finds the sandbox's programs; a missing one is an error naming it.
    pub fn new(settings: &SandboxSettings) -> Result<Self> {
        let bwrap = find_program(&settings.bwrap, "bwrap", "bubblewrap")?;
        let prlimit = find_program(&settings.prlimit, "prlimit", "util-linux")?;
        let setpriv = if own_uid()? == 0 {
            let p = find_program(&settings.setpriv, "setpriv", "util-linux")?;
            // It runs inside the sandbox, where only /usr is mounted.
            let real = std::fs::canonicalize(&p)?;
            if !real.starts_with("/usr") {
                return Err(unavailable(format!(
                    "`{}` must live under /usr to be usable inside the sandbox (set `tools.code_interpreter.setpriv`)",
                    p.display()
                )));
            }
            Some(real)
        } else {
            None
        };
        let python = find_program(&settings.python, "python", "python3")?;
        let python = std::path::absolute(&python)?;
        let real = std::fs::canonicalize(&python)?;
        let mut python_dirs = Vec::new();
        if !real.starts_with("/usr") {
            // <prefix>/bin/pythonX.Y
            if let Some(prefix) = real.parent().and_then(Path::parent) {
                python_dirs.push(prefix.to_path_buf());
            }
        }
        if let Some(venv) = python.parent().and_then(Path::parent) {
            if venv.join("pyvenv.cfg").is_file() {
                python_dirs.push(std::fs::canonicalize(venv)?);
            }
        }
        Ok(Self { settings: settings.clone(), bwrap, prlimit, setpriv, python, python_dirs })
    }

    pub fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    /// Runs `program` (Python source, fed on stdin) with `work_dir` as its one writable
    /// directory (the program changes into it itself; it starts in `/`) and `env` added to a
    /// clean environment. Blocks until the sandbox is gone.
    pub fn run(&self, work_dir: &Path, program: &str, env: &[(&str, &str)]) -> Result<Outcome> {
        let uid_slot = if self.setpriv.is_some() { Some(UidSlot::take()?) } else { None };
        let work_dir = std::fs::canonicalize(work_dir)?;
        let mut cmd = Command::new(&self.prlimit);
        cmd.args(self.limits()?).arg("--").arg(&self.bwrap).args(self.bwrap_args(&work_dir));
        for (k, v) in env {
            cmd.arg("--setenv").arg(k).arg(v);
        }
        if let (Some(setpriv), Some(slot)) = (&self.setpriv, &uid_slot) {
            let uid = self.settings.uid_base + slot.0;
            let gid = self.settings.gid;
            std::os::unix::fs::chown(&work_dir, Some(uid), Some(gid))?;
            std::fs::set_permissions(&work_dir, std::fs::Permissions::from_mode(0o2770))?;
            cmd.arg(setpriv).args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_owned(),
                "--inh-caps=-all".to_owned(),
                "--no-new-privs".to_owned(),
                "--".to_owned(),
            ]);
        }
        cmd.arg(&self.python).args(["-s", "-"]);
        cmd.env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let outcome = self.supervise(cmd, program);
        drop(uid_slot);
        outcome
    }

    fn limits(&self) -> Result<Vec<String>> {
        let s = &self.settings;
        let nproc = if self.setpriv.is_some() {
            s.max_processes
        } else {
            // Without a uid of its own, the limit counts every task of the server's uid.
            s.max_processes.saturating_add(tasks_of(own_uid()?))
        };
        Ok(vec![
            format!("--as={}", s.memory_bytes),
            format!("--cpu={}", s.cpu_seconds),
            format!("--fsize={}", s.max_file_bytes),
            format!("--nproc={nproc}"),
            "--nofile=256".to_owned(),
            "--core=0".to_owned(),
        ])
    }

    fn bwrap_args(&self, work_dir: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| a.extend(items.iter().map(|i| i.as_ref().to_owned()));
        if self.setpriv.is_some() {
            // Root: no user namespace (the program gets a real unprivileged uid instead); bwrap
            // keeps only what setpriv needs to switch to it.
            push(&[&"--unshare-ipc", &"--unshare-pid", &"--unshare-net", &"--unshare-uts", &"--unshare-cgroup-try"]);
            push(&[&"--cap-drop", &"ALL", &"--cap-add", &"CAP_SETUID", &"--cap-add", &"CAP_SETGID"]);
        } else {
            push(&[&"--unshare-all"]);
        }
        push(&[&"--die-with-parent", &"--new-session", &"--clearenv"]);
        push(&[&"--ro-bind", &"/usr", &"/usr"]);
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::symlink_metadata(dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(dir) {
                        push(&[&"--symlink", &target, &dir]);
                    }
                }
                Ok(m) if m.is_dir() => push(&[&"--ro-bind", &dir, &dir]),
                _ => {}
            }
        }
        // From /etc only what libraries and matplotlib look up: Debian's shared library
        // alternatives (BLAS for numpy), the loader cache, fontconfig's and matplotlib's defaults,
        // the time zone.
        push(&[&"--perms", &"0755", &"--dir", &"/etc"]);
        for path in ["/etc/alternatives", "/etc/ld.so.cache", "/etc/fonts", "/etc/matplotlibrc", "/etc/localtime"] {
            if Path::new(path).exists() {
                push(&[&"--ro-bind", &path, &path]);
            }
        }
        for dir in &self.python_dirs {
            push(&[&"--ro-bind", dir, dir]);
        }
        let tmp_size = self.settings.tmp_bytes.to_string();
        push(&[&"--proc", &"/proc", &"--dev", &"/dev", &"--perms", &"1777", &"--size", &tmp_size, &"--tmpfs", &"/tmp"]);
        // The directories leading to it are made searchable: bwrap would copy the host's modes,
        // and a private parent (a 0700 temporary directory) would keep the program out.
        let mut parents: Vec<&Path> = work_dir.ancestors().skip(1).filter(|p| p.parent().is_some()).collect();
        parents.reverse();
        for dir in parents {
            push(&[&"--perms", &"0755", &"--dir", &dir]);
        }
        // The program changes into it itself: as root, bwrap has given up the right to enter a
        // directory owned by the run's uid by the time it would.
        push(&[&"--bind", &work_dir, &work_dir, &"--chdir", &"/"]);
        for (k, v) in [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/tmp"),
            ("TMPDIR", "/tmp"),
            ("XDG_CACHE_HOME", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("PYTHONIOENCODING", "utf-8"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONHASHSEED", "0"),
            ("OPENBLAS_NUM_THREADS", "1"),
            ("OMP_NUM_THREADS", "1"),
            ("MKL_NUM_THREADS", "1"),
        ] {
            push(&[&"--setenv", &k, &v]);
        }
        a
    }

    /// Starts the sandbox, feeds it the program, collects its output and enforces the wall
    /// clock. Returns once every process of the sandbox is gone.
    fn supervise(&self, mut cmd: Command, program: &str) -> Result<Outcome> {
        let mut child = cmd.spawn().map_err(|e| unavailable(format!("cannot start the sandbox: {e}")))?;
        let cap = self.settings.max_output_bytes;
        let (tx, rx) = mpsc::channel::<(bool, Vec<u8>, u64)>();
        for (is_out, pipe) in [
            (true, child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
            (false, child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let (kept, total) = pipe.map(|p| read_capped(p, cap)).unwrap_or_default();
                let _ = tx.send((is_out, kept, total));
            });
        }
        drop(tx);
        if let Some(mut stdin) = child.stdin.take() {
            // A sandbox that failed to start closes its end early; its stderr says why.
            let _ = stdin.write_all(program.as_bytes());
        }
        let deadline = Instant::now() + self.settings.timeout;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                // bwrap dies; its child gets SIGKILL (--die-with-parent) and, being the PID
                // namespace's first process, takes every other process of the sandbox along.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        // The pipes reach end-of-file once the last sandboxed process holding them is gone.
        let mut stdout = String::new();
        let mut stderr = String::new();
        for _ in 0..2 {
            let Ok((is_out, kept, total)) = rx.recv_timeout(Duration::from_secs(10)) else {
                return Err(Error::internal("the sandbox's output did not close after it ended"));
            };
            let mut text = String::from_utf8_lossy(&kept).into_owned();
            if total > kept.len() as u64 {
                let _ = write!(text, "\n[output cut: {total} bytes written, the first {} kept]", kept.len());
            }
            if is_out {
                stdout = text;
            } else {
                stderr = text;
            }
        }
        let exit = match status {
            None => Exit::TimedOut,
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(sig)) => Exit::Signal(sig),
                (None, None) => Exit::Code(-1),
            },
        };
        // bwrap, prlimit and setpriv report their own failures (exit 1, a prefixed line)
        // before the program starts.
        if exit != Exit::TimedOut && exit != Exit::Code(0) {
            let first = stderr.lines().next().unwrap_or_default();
            if ["bwrap:", "prlimit:", "setpriv:"].iter().any(|p| first.starts_with(p)) {
                return Err(unavailable(format!("the sandbox could not start: {}", stderr.trim())));
            }
        }
        Ok(Outcome { exit, stdout, stderr })
    }
}

/// Reads `pipe` to its end, keeping the first `cap` bytes; returns them and the total length.
fn read_capped(mut pipe: impl Read, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, total)
}

/// Threads of every process owned by `uid` (what `RLIMIT_NPROC` counts).
fn tasks_of(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| std::fs::read_dir(e.path().join("task")).map_or(1, |t| t.count() as u64))
        .sum()
}

/// The runs holding a uid offset now.
static TAKEN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A uid offset held for one run.
struct UidSlot(u32);

impl UidSlot {
    fn take() -> Result<Self> {
        let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
        let free = (0..UID_SLOTS).find(|i| !taken.contains(i)).ok_or_else(|| {
            unavailable(format!("{UID_SLOTS} code interpreter runs are already going on; try again later"))
        })?;
        taken.insert(free);
        Ok(Self(free))
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        TAKEN.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_programs_are_named() {
        let settings = SandboxSettings { bwrap: PathBuf::from("/nonexistent/bwrap"), ..SandboxSettings::default() };
        let err = Sandbox::new(&settings).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/bwrap") && err.contains("bubblewrap") && err.contains("never run"), "{err}");
        let settings = SandboxSettings { prlimit: PathBuf::from("no-such-prlimit"), ..SandboxSettings::default() };
        let err = Sandbox::new(&settings).unwrap_err().to_string();
        assert!(err.contains("no-such-prlimit") && err.contains("not found in PATH"), "{err}");
    }

    #[test]
    fn output_is_capped() {
        let (kept, total) = read_capped(&b"abcdefgh"[..], 3);
        assert_eq!((kept.as_slice(), total), (&b"abc"[..], 8));
    }

    #[test]
    fn uid_slots_are_unique_and_returned() {
        let a = UidSlot::take().unwrap();
        let b = UidSlot::take().unwrap();
        assert_ne!(a.0, b.0);
        let freed = a.0;
        drop(a);
        assert!(!TAKEN.lock().unwrap().contains(&freed));
    }
}

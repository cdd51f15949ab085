#!/usr/bin/env python3
"""Side-by-side load harness for Llama Stack 0.0.41-compatible servers (stdlib only; uses `wrk` if on PATH).

Every workload runs, in each repeat, first against the fake backend alone (the floor) and then against
each target in turn, so ratios taken from one run are comparable even on a noisy machine.

  python3 load.py --fake http://127.0.0.1:18001 \
      --target upstream=http://127.0.0.1:15000 [--target rs=http://127.0.0.1:15001 ...] \
      [--start upstream='bash start-upstream.sh 15000 18001 run-upstream-full.yaml'] [--python upstream=/path/to/venv/bin/python] \
      [--workloads startup,import,models,chat,stream,agents,memory] [--repeat 3] [--duration 8] \
      [--model Llama3.1-8B-Instruct] [--fake-model llama3.1:8b-instruct-fp16] \
      [--embedding-model all-MiniLM-L6-v2] [--out results.json] [--out-md results.md]

--start NAME=CMD: the harness starts the server itself (in its own process group), measures cold start and
idle RSS on every repeat, keeps the last one running for the other workloads and stops it at the end.
--python NAME=EXE: interpreter whose `import llama_stack` / `import llama_stack_client` time is measured.
All loops are bounded by a request count and by time; only the given URLs are contacted.
"""
import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import urlsplit

# ----------------------------------------------------------------------------- tiny HTTP/1.1 client



def stop_group(p, grace=15.0, poll=0.02):
    """SIGTERM the whole process group `p` leads, wait until every member is gone (a `sh -c` wrapper
    exits before the server it started), SIGKILL after `grace` seconds."""

    def group_alive():
        p.poll()
        try:
            os.killpg(p.pid, 0)
            return True
        except ProcessLookupError:
            return False
    if not group_alive():
        return
    os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + grace
    while group_alive() and time.time() < deadline:
        time.sleep(poll)
    if group_alive():
        os.killpg(p.pid, signal.SIGKILL)
        while group_alive() and time.time() < deadline + 5:
            time.sleep(poll)

class Conn:
    def __init__(self, url):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.hosthdr = u.netloc
        self.r = self.w = None

    async def _open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None

    async def request(self, method, path, body=None, timeout=120.0):
        """Returns (status, body_bytes, t_first_event, n_events, t_total). Events are SSE `data:` lines or
        NDJSON lines (whichever the response carries); t_* are seconds from send."""
        return await asyncio.wait_for(self._request(method, path, body), timeout)

    async def _request(self, method, path, body):
        if self.w is None:
            await self._open()
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n" % (method, path, self.hosthdr)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        t0 = time.perf_counter()
        self.w.write(head.encode() + b"\r\n" + data)
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            ln = await self.r.readline()
            if ln in (b"\r\n", b"\n", b""):
                break
            k, _, v = ln.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        ctype = hdrs.get("content-type", "")
        sse = "event-stream" in ctype
        ndjson = "ndjson" in ctype
        t_first, n_ev, parts, tail = None, 0, [], b""

        def feed(b):
            nonlocal t_first, n_ev, tail
            parts.append(b)
            if not (sse or ndjson):
                return
            buf = tail + b
            if sse:
                k = buf.count(b"data:")
                tail = buf[-4:]
                k -= tail.count(b"data:")
            else:
                k = buf.count(b"\n")
                tail = b""
            if k and t_first is None:
                t_first = time.perf_counter() - t0
            n_ev += k

        if "content-length" in hdrs:
            feed(await self.r.readexactly(int(hdrs["content-length"])))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                feed(await self.r.readexactly(size))
                await self.r.readexactly(2)
        else:
            feed(await self.r.read())
            self.close()
        if sse and tail.count(b"data:"):
            n_ev += tail.count(b"data:")
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        t_total = time.perf_counter() - t0
        if t_first is None:
            t_first = t_total
        return status, b"".join(parts), t_first, n_ev, t_total


async def closed_loop(url, method, path, body, conc, max_requests, max_seconds):
    """conc workers, each with one keep-alive connection, until max_requests in all or max_seconds."""
    lat, ttfc, events, errors = [], [], [], [0]
    left = [max_requests]
    deadline = time.perf_counter() + max_seconds

    async def worker(wi):
        c = Conn(url)
        try:
            while left[0] > 0 and time.perf_counter() < deadline:
                left[0] -= 1
                try:
                    b = body(wi) if callable(body) else body
                    st, _, tf, ne, tt = await c.request(method, path, b, timeout=max(5.0, max_seconds))
                except Exception:
                    errors[0] += 1
                    c.close()
                    continue
                if st != 200:
                    errors[0] += 1
                    continue
                lat.append(tt)
                ttfc.append(tf)
                events.append(ne)
        finally:
            c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(i) for i in range(conc)])
    wall = time.perf_counter() - t0
    return dict(n=len(lat), errors=errors[0], wall=wall, rps=len(lat) / wall if wall else 0,
                p50=pct(lat, 50), p99=pct(lat, 99), ttfc_p50=pct(ttfc, 50), ttfc_p99=pct(ttfc, 99),
                events=statistics.median(events) if events else 0)


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


# ----------------------------------------------------------------------------- wrk


def wrk_run(url, path, conc, seconds, body=None):
    if not shutil.which("wrk"):
        return asyncio.run(closed_loop(url, "POST" if body else "GET", path, body, conc, 10 ** 6, seconds))
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    if body is not None:
        lua.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
                  % json.dumps(json.dumps(body)))
    lua.close()
    cmd = ["wrk", "-t%d" % min(conc, 2), "-c%d" % conc, "-d%ds" % seconds, "--timeout", "30s", "--latency",
           "-s", lua.name, url.rstrip("/") + path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    os.unlink(lua.name)

    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)", s)
        return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]

    res = dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
    for p in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
        res["p" + p] = dur(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["n"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    res["errors"] = errs
    return res


# ----------------------------------------------------------------------------- helpers


def sync_req(url, method, path, body=None, timeout=60):
    async def go():
        c = Conn(url)
        try:
            st, b, *_ = await c.request(method, path, body, timeout)
            return st, b
        finally:
            c.close()
    return asyncio.run(go())


def sse_events(raw):
    out = []
    for ln in raw.split(b"\n"):
        if ln.startswith(b"data:"):
            try:
                out.append(json.loads(ln[5:]))
            except ValueError:
                pass
    return out


def tree_rss_kb(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            with open("/proc/%d/status" % p) as f:
                m = re.search(r"VmRSS:\s+(\d+)", f.read())
                total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def chat_body(model, n, stream):
    return {"model": model, "messages": [{"role": "user", "content": "Say something."}],
            "stream": stream, "sampling_params": {"strategy": "greedy", "max_tokens": n}}


def fake_body(model, n, stream):
    return {"model": model, "prompt": "<|begin_of_text|>Say something.", "raw": True, "stream": stream,
            "options": {"max_tokens": n}}


# ----------------------------------------------------------------------------- workloads
# each returns {row_name: {target_name: metrics_dict}} for one repeat


class Bench:
    def __init__(self, a):
        self.a = a
        self.targets = dict(kv.split("=", 1) for kv in a.target)
        self.starts = dict(kv.split("=", 1) for kv in a.start)
        self.pythons = dict(kv.split("=", 1) for kv in a.python)
        self.procs = {}

    def log(self, *x):
        print("[%s]" % time.strftime("%H:%M:%S"), *x, file=sys.stderr, flush=True)

    # -- startup: spawn, poll /health until 200, RSS after a few requests
    def startup(self, rep):
        rows = {"cold start to first /health 200 (s)": {}, "idle RSS after warm-up (MiB)": {}}
        for name, cmd in self.starts.items():
            url = self.targets[name]
            self.stop(name)
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, shell=True, start_new_session=True, stdout=self.a.server_log,
                                 stderr=subprocess.STDOUT)
            self.procs[name] = p
            ready = None
            while time.perf_counter() - t0 < self.a.start_timeout and p.poll() is None:
                try:
                    if sync_req(url, "GET", "/health", timeout=2)[0] == 200:
                        ready = time.perf_counter() - t0
                        break
                except Exception:
                    pass
                time.sleep(0.02)
            if ready is None:
                raise SystemExit("%s did not become ready (see server log)" % name)
            for _ in range(5):
                sync_req(url, "GET", "/models/list")
            time.sleep(1.0)
            rows["cold start to first /health 200 (s)"][name] = {"value": ready}
            rows["idle RSS after warm-up (MiB)"][name] = {"value": tree_rss_kb(p.pid) / 1024.0}
            self.log("startup", name, "%.2fs" % ready)
        return rows

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p:
            stop_group(p)

    def stop_all(self):
        for n in list(self.procs):
            self.stop(n)

    # -- import times
    def imports(self, rep):
        rows = {}
        stmts = [("python -c pass", "pass"), ("import llama_stack", "import llama_stack"),
                 ("import llama_stack.apis.agents (types)", "import llama_stack.apis.agents"),
                 ("import llama_stack_client", "import llama_stack_client")]
        for label, st in stmts:
            row = rows.setdefault("%s (s)" % label, {})
            for name, py in self.pythons.items():
                ts = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    r = subprocess.run([py, "-c", st], capture_output=True, timeout=120)
                    ts.append(time.perf_counter() - t0)
                row[name] = {"value": min(ts) if r.returncode == 0 else float("nan")}
        return rows

    # -- GET /models/list
    def models(self, rep):
        rows = {}
        for c in self.a.conc:
            row = rows.setdefault("GET /models/list c=%d" % c, {})
            row["fake"] = wrk_run(self.a.fake, "/api/ps", c, self.a.duration)
            for name, url in self.targets.items():
                row[name] = wrk_run(url, "/models/list", c, self.a.duration)
            self.log("models c=%d" % c, {k: round(v["rps"]) for k, v in row.items()})
        return rows

    # -- non-streaming chat completion
    def chat(self, rep):
        rows = {}
        n = self.a.chat_tokens
        for c in self.a.conc:
            row = rows.setdefault("POST chat_completion non-stream %d tok c=%d" % (n, c), {})
            row["fake"] = wrk_run(self.a.fake, "/api/generate", c, self.a.duration,
                                  fake_body(self.a.fake_model, n, False))
            for name, url in self.targets.items():
                row[name] = wrk_run(url, "/inference/chat_completion", c, self.a.duration,
                                    chat_body(self.a.model, n, False))
            self.log("chat c=%d" % c, {k: round(v["rps"]) for k, v in row.items()})
        return rows

    # -- streaming chat completion
    def stream(self, rep):
        rows = {}
        n = self.a.stream_tokens
        for c, nreq in ((1, self.a.stream_requests), (self.a.stream_conc, self.a.stream_requests * 4)):
            row = rows.setdefault("POST chat_completion stream %d tok c=%d" % (n, c), {})
            row["fake"] = asyncio.run(closed_loop(self.a.fake, "POST", "/api/generate",
                                                  fake_body(self.a.fake_model, n, True), c, nreq, self.a.max_seconds))
            for name, url in self.targets.items():
                row[name] = asyncio.run(closed_loop(url, "POST", "/inference/chat_completion",
                                                    chat_body(self.a.model, n, True), c, nreq, self.a.max_seconds))
            fake = row["fake"]
            for name in self.targets:
                r = row[name]
                r["per_chunk_overhead"] = (r["p50"] - fake["p50"]) / max(1, r["events"])
            self.log("stream c=%d" % c, {k: (round(v["p50"], 4), round(v["ttfc_p50"], 4), v["events"])
                                         for k, v in row.items()})
        return rows

    # -- agents: create agent + one session per worker, then streaming turns
    def agents(self, rep):
        rows = {}
        cfg = {"model": self.a.model, "instructions": "You are a helpful assistant.",
               "enable_session_persistence": False, "max_infer_iters": 1,
               "sampling_params": {"strategy": "greedy", "max_tokens": self.a.agent_tokens},
               "input_shields": self.a.shields, "output_shields": self.a.shields, "tools": [],
               "tool_choice": "auto", "tool_prompt_format": "json"}
        for c in (1, self.a.agent_conc):
            row = rows.setdefault("agent turn (stream, %d tok%s) c=%d" % (
                self.a.agent_tokens, ", shields" if self.a.shields else "", c), {})
            for name, url in self.targets.items():
                st, b = sync_req(url, "POST", "/agents/create", {"agent_config": cfg})
                assert st == 200, b[:300]
                aid = json.loads(b)["agent_id"]
                sids = []
                for i in range(c):
                    st, b = sync_req(url, "POST", "/agents/session/create",
                                     {"agent_id": aid, "session_name": "bench-%d" % i})
                    assert st == 200, b[:300]
                    sids.append(json.loads(b)["session_id"])
                # sanity: one turn must end with turn_complete
                st, b = sync_req(url, "POST", "/agents/turn/create",
                                 {"agent_id": aid, "session_id": sids[0], "stream": True,
                                  "messages": [{"role": "user", "content": "Hello!"}]})
                evs = sse_events(b)
                assert st == 200 and evs and "turn_complete" in json.dumps(evs[-1]), b[-300:]

                def body(wi):  # worker wi owns session wi: turns on one session never overlap
                    return {"agent_id": aid, "session_id": sids[wi], "stream": True,
                            "messages": [{"role": "user", "content": "Hello!"}]}
                row[name] = asyncio.run(closed_loop(url, "POST", "/agents/turn/create", body, c,
                                                    self.a.agent_turns * c, self.a.max_seconds))
            self.log("agents c=%d" % c, {k: (round(v["rps"], 2), round(v["p50"], 4)) for k, v in row.items()})
        return rows

    # -- memory: register bank, insert N docs in batches, query
    def memory(self, rep):
        rows = {}
        docs = [{"document_id": "doc-%d" % i, "mime_type": "text/plain", "metadata": {"i": i},
                 "content": "Document %d: llamas are domesticated South American camelids; this is note "
                            "number %d about their wool, diet and habitat in the Andes." % (i, i)}
                for i in range(self.a.memory_docs)]
        B = self.a.memory_batch
        for name, url in self.targets.items():
            bank = "bench_%s_%s" % (rep, uuid.uuid4().hex[:6])
            st, b = sync_req(url, "POST", "/memory_banks/register", {"memory_bank": {
                "identifier": bank, "provider_id": self.a.memory_provider, "type": "vector",
                "embedding_model": self.a.embedding_model, "chunk_size_in_tokens": 512,
                "overlap_size_in_tokens": 64}})
            assert st == 200, b[:300]
            t0 = time.perf_counter()
            st, b = sync_req(url, "POST", "/memory/insert", {"bank_id": bank, "documents": [
                {"document_id": "warm", "content": "warm up", "metadata": {}}]}, timeout=300)
            assert st == 200, b[:300]
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(0, len(docs), B):
                st, b = sync_req(url, "POST", "/memory/insert", {"bank_id": bank, "documents": docs[i:i + B]},
                                 timeout=self.a.max_seconds * 4)
                assert st == 200, b[:300]
            ins = time.perf_counter() - t0
            rows.setdefault("memory first insert (model load) (s)", {})[name] = {"value": first}
            rows.setdefault("memory insert %d docs, batch %d (docs/s)" % (len(docs), B), {})[name] = {
                "value": len(docs) / ins}
            q = asyncio.run(closed_loop(url, "POST", "/memory/query",
                                        {"bank_id": bank, "query": "What do llamas eat?", "params": {"max_chunks": 5}},
                                        1, self.a.memory_queries, self.a.max_seconds))
            rows.setdefault("memory query c=1", {})[name] = q
            self.log("memory", name, "first %.2fs, %.1f docs/s, query p50 %.4f" % (first, len(docs) / ins, q["p50"]))
        return rows


# ----------------------------------------------------------------------------- report


def fmt(v, unit):
    if v != v:
        return "n/a"
    if unit == "ms":
        return "%.2f" % (v * 1e3) if v < 10 else "%.0f" % (v * 1e3)
    if unit == "us":
        return "%.0f" % (v * 1e6)
    return "%.1f" % v if abs(v) >= 10 else "%.3g" % v


def summarize(results, names):
    """results: list over repeats of {row: {target: metrics}} -> markdown table with median (min-max)."""
    lines = ["| workload | metric | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    rows = []
    for r in results:
        for k in r:
            if k not in rows:
                rows.append(k)
    for row in rows:
        metrics = []
        for r in results:
            for t in r.get(row, {}).values():
                for m in t:
                    if m not in metrics and m in METRICS:
                        metrics.append(m)
        streamy = "stream" in row or "agent" in row
        for m in metrics:
            if not streamy and m in ("ttfc_p50", "ttfc_p99", "events"):
                continue
            if m == "errors" and not any(r.get(row, {}).get(n, {}).get("errors") for r in results for n in names):
                continue
            label, unit = METRICS[m]
            cells = []
            for n in names:
                vals = [r[row][n][m] for r in results if n in r.get(row, {}) and m in r[row][n]]
                vals = [v for v in vals if v == v]
                if not vals:
                    cells.append("")
                    continue
                med = statistics.median(vals)
                cells.append("%s (%s–%s)" % (fmt(med, unit), fmt(min(vals), unit), fmt(max(vals), unit))
                             if len(vals) > 1 else fmt(med, unit))
            lines.append("| %s | %s | %s |" % (row, label, " | ".join(cells)))
    return "\n".join(lines)


METRICS = {"value": ("value", ""), "rps": ("req/s", ""), "p50": ("p50 ms", "ms"), "p99": ("p99 ms", "ms"),
           "ttfc_p50": ("first chunk p50 ms", "ms"), "ttfc_p99": ("first chunk p99 ms", "ms"),
           "events": ("chunks/resp", ""), "per_chunk_overhead": ("added µs/chunk", "us"),
           "errors": ("errors", "")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fake", required=True, help="fake backend base URL (measured alone as the floor)")
    ap.add_argument("--target", action="append", default=[], help="NAME=BASE_URL (repeatable)")
    ap.add_argument("--start", action="append", default=[], help="NAME=SHELL_CMD that starts NAME's server")
    ap.add_argument("--python", action="append", default=[], help="NAME=PYTHON for import timings")
    ap.add_argument("--workloads", default="startup,import,models,chat,stream,agents,memory")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="seconds per wrk point")
    ap.add_argument("--conc", default="1,16,64")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="time bound of every Python load loop")
    ap.add_argument("--model", default="Llama3.1-8B-Instruct")
    ap.add_argument("--fake-model", default="llama3.1:8b-instruct-fp16")
    ap.add_argument("--chat-tokens", type=int, default=32)
    ap.add_argument("--stream-tokens", type=int, default=256)
    ap.add_argument("--stream-requests", type=int, default=8)
    ap.add_argument("--stream-conc", type=int, default=16)
    ap.add_argument("--agent-tokens", type=int, default=32)
    ap.add_argument("--agent-turns", type=int, default=15, help="turns per worker")
    ap.add_argument("--agent-conc", type=int, default=8)
    ap.add_argument("--shields", default="", help="comma list of shields for agent input/output, e.g. llama_guard")
    ap.add_argument("--memory-docs", type=int, default=1000)
    ap.add_argument("--memory-batch", type=int, default=100)
    ap.add_argument("--memory-queries", type=int, default=50)
    ap.add_argument("--memory-provider", default="faiss0")
    ap.add_argument("--embedding-model", default="all-MiniLM-L6-v2")
    ap.add_argument("--start-timeout", type=float, default=180.0)
    ap.add_argument("--server-log", default="/tmp/bench-server.log")
    ap.add_argument("--out", default="results.json")
    ap.add_argument("--out-md", default="results.md")
    a = ap.parse_args()
    a.conc = [int(x) for x in a.conc.split(",")]
    a.shields = [s for s in a.shields.split(",") if s]
    a.server_log = open(a.server_log, "ab")
    b = Bench(a)
    wl = a.workloads.split(",")
    results, names = [], ["fake"] + list(b.targets)
    try:
        for rep in range(a.repeat):
            res = {}
            for w in ["startup", "import", "models", "chat", "stream", "agents", "memory"]:
                if w not in wl:
                    continue
                if w == "startup" and not b.starts:
                    continue
                b.log("repeat %d: %s" % (rep + 1, w))
                res.update(getattr(b, "imports" if w == "import" else w)(rep))
            results.append(res)
            with open(a.out, "w") as f:
                json.dump({"args": {k: v for k, v in vars(a).items() if k != "server_log"},
                           "repeats": results}, f, indent=1)
    finally:
        b.stop_all()
    md = summarize(results, names)
    with open(a.out_md, "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()

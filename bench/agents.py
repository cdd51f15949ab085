#!/usr/bin/env python3
"""Agent turns side by side: upstream llama-stack 0.0.41 vs this project's server, in one run.

Both servers run agents (meta-reference, state in sqlite) over `remote::ollama` pointed at the same
zero-delay fake Ollama (`tests/support/fake_backend.py --tool-calls`). Workloads:

  agents       streamed turns, no tools, at each --conc (wrk; every connection's turns go round a pool
               of sessions so history stays short): turns/s, p50/p99 turn latency, and at c=1 the
               latency added over the fake's own answer to the same inference
  agents_tool  a client tool call round trip (Python client): turn 1 ends with the model's call to the
               agent's `function_call` tool, turn 2 sends the tool's answer and gets the reply
  agents_soak  --soak-conc concurrent streamed turns for --soak-seconds: errors, lost turns, peak RSS

After every point the store itself is read (the sqlite file, key `session:{agent}:{session}:{turn}`)
and every turn the client saw complete (`turn_complete`) must be there: `lost` counts those missing.

    bench/agents.py                                   # release build into --ours-venv, then everything
    bench/agents.py --no-build --ours-venv DIR        # measure an installed build
    bench/run.sh --workloads agents,agents_tool,agents_soak   # the same, through run.sh

Standard library plus the `wrk` binary. Only 127.0.0.1 is contacted.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402
import load  # noqa: E402
from compare import Server, log  # noqa: E402

WORKLOADS = ("agents", "agents_tool", "agents_soak")
TOOL = {
    "type": "function_call", "function_name": "get_weather", "description": "Current weather of a city",
    "parameters": {"city": {"param_type": "str", "description": "the city", "required": True}},
}

# One wrk script per point: each thread sends turns round its own share of the sessions, counts the
# streams that end in `turn_complete`, and keeps their turn ids (the first `turn_id` of a stream is
# turn_start's); `done` writes them to IDS_PATH.
LUA = r"""
local sessions = {%(sessions)s}
local agent = "%(agent)s"
local threads, nthreads = {}, 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
local n = 0
ok, bad, ids = 0, 0, {}
function init(args)
  n = tid
end
function request()
  local sid = sessions[(n %% #sessions) + 1]
  n = n + %(threads)d
  local body = '{"agent_id":"' .. agent .. '","session_id":"' .. sid ..
    '","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'
  return wrk.format("POST", "/agents/turn/create", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 200 and string.find(body, '"turn_complete"', 1, true) then
    ok = ok + 1
    local id = string.match(body, '"turn_id"%%s*:%%s*"([^"]+)"')
    if id then ids[#ids + 1] = id end
  else
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local f = io.open("%(ids_path)s", "w")
  local o, b = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
    for _, id in ipairs(t:get("ids")) do f:write(id, "\n") end
  end
  f:close()
  io.write(string.format("TURNS ok=%%d bad=%%d\n", o, b))
end
"""


class Peak(threading.Thread):
    """Samples a server's process-tree RSS every 100 ms until stopped; keeps the peak."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.peak, self.halt = server, 0.0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.peak = max(self.peak, self.server.rss_mib())
            self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join()
        self.peak = max(self.peak, self.server.rss_mib())
        return self.peak


def stored_turns(db, agent_id):
    """Turn ids in the agents store for this agent (read straight from the sqlite file)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        rows = con.execute("SELECT key FROM kvstore WHERE key >= ? AND key < ?",
                           ("session:%s:" % agent_id, "session:%s;" % agent_id)).fetchall()
    finally:
        con.close()
    return {k.split(":")[3] for (k,) in rows if k.count(":") == 3}


def post(url, path, body, timeout=120):
    st, b = load.sync_req(url, "POST", path, body, timeout=timeout)
    if st != 200:
        raise RuntimeError("%s %s -> %d: %s" % (url, path, st, b[:300]))
    return json.loads(b) if b.strip() else None


def make_agent(url, a, tools=()):
    cfg = {"model": a.model, "instructions": "You are a helpful assistant.", "enable_session_persistence": True,
           "max_infer_iters": 1, "sampling_params": {"strategy": "greedy", "max_tokens": a.tokens},
           "input_shields": [], "output_shields": [], "tools": list(tools), "tool_choice": "auto",
           "tool_prompt_format": "json"}
    return post(url, "/agents/create", {"agent_config": cfg})["agent_id"]


def make_sessions(url, agent_id, n):
    return [post(url, "/agents/session/create", {"agent_id": agent_id, "session_name": "bench-%d" % i})["session_id"]
            for i in range(n)]


def turn_body(agent_id, session_id, messages):
    return {"agent_id": agent_id, "session_id": session_id, "stream": True, "messages": messages}


def check_turn(url, agent_id, session_id):
    st, b = load.sync_req(url, "POST", "/agents/turn/create",
                          turn_body(agent_id, session_id, [{"role": "user", "content": "Hello!"}]))
    evs = load.sse_events(b)
    if st != 200 or not evs or "turn_complete" not in json.dumps(evs[-1]):
        raise RuntimeError("the check turn did not complete: %d %s" % (st, b[-300:]))


class Run:
    def __init__(self, a, servers, dbs, fake_port, workdir):
        self.a, self.servers, self.dbs, self.fake_port, self.workdir = a, servers, dbs, fake_port, workdir
        self.rows = []

    def url(self, name):
        return "http://127.0.0.1:%d" % self.servers[name].port

    def idle(self):
        for s in self.servers.values():
            s.wait_idle()

    def wrk_turns(self, name, conc, seconds, sessions):
        url = self.url(name)
        agent_id = make_agent(url, self.a)
        sids = make_sessions(url, agent_id, sessions)
        check_turn(url, agent_id, sids[0])
        before = len(stored_turns(self.dbs[name], agent_id))
        ids_path = Path(self.workdir) / ("ids-%s-%d.txt" % (name, conc))
        threads = min(conc, 2)
        lua = Path(self.workdir) / ("turns-%s-%d.lua" % (name, conc))
        lua.write_text(LUA % dict(sessions=",".join('"%s"' % s for s in sids), agent=agent_id,
                                  ids_path=ids_path, threads=threads))
        self.idle()
        peak = Peak(self.servers[name])
        peak.start()
        res = compare.wrk(self.servers[name].port, "/agents/turn/create", conc, seconds, lua=str(lua),
                          timeout=self.a.timeout, keep_output=True)
        m = re.search(r"TURNS ok=(\d+) bad=(\d+)", res.pop("output"))
        if not m:
            raise RuntimeError("wrk's script reported nothing on %s c=%d" % (name, conc))
        # wrk counts non-2xx and socket errors; `bad` counts 200 streams that did not end in turn_complete.
        res["bad"] = int(m.group(2))
        # Streams wrk cut off at the end still run to completion on the server (and are stored).
        self.servers[name].wait_idle()
        res["peak_rss"] = peak.stop()
        res["rss_after"] = self.servers[name].rss_mib()
        acked = [x for x in ids_path.read_text().split("\n") if x] if ids_path.exists() else []
        stored = stored_turns(self.dbs[name], agent_id)
        res.update(acked=len(acked), stored=len(stored) - before, lost=len(set(acked) - stored))
        return res

    def fake_point(self, path, body, conc, seconds):
        lua = Path(self.workdir) / ("fake-%s-%d.lua" % (path.strip("/").replace("/", "_"), conc))
        lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
                       % json.dumps(json.dumps(body)))
        return compare.wrk(self.fake_port, path, conc, seconds, lua=str(lua))

    # -- workloads
    def agents(self):
        a = self.a
        fake_chat = {"model": a.fake_model, "stream": True, "options": {"temperature": 0.0, "num_predict": a.tokens},
                     "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                  {"role": "user", "content": "Hello!"}]}
        fake_gen = {"model": a.fake_model, "raw": True, "stream": True,
                    "options": {"temperature": 0.0, "num_predict": a.tokens},
                    "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                              "<|start_header_id|>assistant<|end_header_id|>\n\n"}
        for conc in a.conc:
            fake = {"/api/chat": self.fake_point("/api/chat", fake_chat, conc, a.duration),
                    "/api/generate": self.fake_point("/api/generate", fake_gen, conc, a.duration)}
            vals = {}
            for name in self.servers:
                seconds = a.duration if name == "ours" else a.upstream_duration
                vals[name] = self.wrk_turns(name, conc, seconds, a.sessions if name == "ours" else a.upstream_sessions)
                log("agents c=%d %s: %.1f turns/s, p50 %.1f ms, p99 %.1f ms, acked %d, stored %d, lost %d, errors %d"
                    % (conc, name, vals[name]["rps"], vals[name]["p50"] * 1e3, vals[name]["p99"] * 1e3,
                       vals[name]["acked"], vals[name]["stored"], vals[name]["lost"], vals[name]["errors"]))
            self.rows.append(dict(workload="turn, no tools, %d tok, c=%d" % (a.tokens, conc), vals=vals, fake=fake))

    def agents_tool(self):
        a = self.a
        for conc in a.tool_conc:
            vals = {}
            for name in self.servers:
                self.idle()
                vals[name] = self._tool_rounds(name, conc, a.tool_seconds if name == "ours"
                                               else a.upstream_tool_seconds)
                log("agents_tool c=%d %s: %s" % (conc, name, {k: v for k, v in vals[name].items() if k != "ids"}))
            self.rows.append(dict(workload="client tool call round trip (2 turns), c=%d" % conc, vals=vals, fake=None))

    def _tool_rounds(self, name, conc, seconds):
        url = self.url(name)
        agent_id = make_agent(url, self.a, tools=[TOOL])
        sids = make_sessions(url, agent_id, conc * 8)
        before = len(stored_turns(self.dbs[name], agent_id))
        lat, acked, errors = [], [], [0]
        deadline = [0.0]

        async def one(conn, sid):
            t0 = time.perf_counter()
            st, b, *_ = await conn.request("POST", "/agents/turn/create", turn_body(
                agent_id, sid, [{"role": "user", "content": "What is the weather in Paris?"}]), timeout=self.a.timeout)
            done = [e for e in load.sse_events(b) if e.get("event", {}).get("payload", {}).get("event_type")
                    == "turn_complete"]
            if st != 200 or not done:
                raise RuntimeError("turn 1: %d %s" % (st, b[-200:]))
            first = done[0]["event"]["payload"]["turn"]
            calls = first["output_message"]["tool_calls"]
            if not calls or calls[0]["tool_name"] != "get_weather":
                raise RuntimeError("turn 1 did not end with the tool call: %s" % json.dumps(first["output_message"]))
            answer = {"role": "ipython", "call_id": calls[0]["call_id"], "tool_name": "get_weather",
                      "content": "Sunny, 21 C"}
            st, b, *_ = await conn.request("POST", "/agents/turn/create", turn_body(agent_id, sid, [answer]),
                                           timeout=self.a.timeout)
            done = [e for e in load.sse_events(b) if e.get("event", {}).get("payload", {}).get("event_type")
                    == "turn_complete"]
            if st != 200 or not done:
                raise RuntimeError("turn 2: %d %s" % (st, b[-200:]))
            second = done[0]["event"]["payload"]["turn"]
            if second["output_message"]["tool_calls"] or not second["output_message"]["content"]:
                raise RuntimeError("turn 2 is not the model's answer: %s" % json.dumps(second["output_message"]))
            return time.perf_counter() - t0, [first["turn_id"], second["turn_id"]]

        async def worker(wi):
            conn = load.Conn(url)
            k = 0
            try:
                while time.perf_counter() < deadline[0]:
                    sid = sids[wi * 8 + k % 8]
                    k += 1
                    try:
                        t, ids = await one(conn, sid)
                    except Exception as e:  # noqa: BLE001 - counted and shown
                        errors[0] += 1
                        if errors[0] <= 3:
                            log("agents_tool %s: %s" % (name, e))
                        conn.close()
                        conn = load.Conn(url)
                        continue
                    lat.append(t)
                    acked.extend(ids)
            finally:
                conn.close()

        async def all_workers():
            await asyncio.gather(*[worker(i) for i in range(conc)])

        peak = Peak(self.servers[name])
        peak.start()
        t0 = time.perf_counter()
        deadline[0] = t0 + seconds
        asyncio.run(all_workers())
        wall = time.perf_counter() - t0
        self.servers[name].wait_idle()
        stored = stored_turns(self.dbs[name], agent_id)
        return dict(n=len(lat), rps=len(lat) / wall if wall else 0.0, p50=load.pct(lat, 50), p99=load.pct(lat, 99),
                    errors=errors[0], acked=len(acked), stored=len(stored) - before,
                    lost=len(set(acked) - stored), peak_rss=peak.stop())

    def agents_soak(self):
        a = self.a
        vals = {}
        for name in self.servers:
            if name == "upstream" and a.no_upstream_soak:
                continue
            sessions = a.sessions if name == "ours" else a.upstream_sessions
            vals[name] = self.wrk_turns(name, a.soak_conc, a.soak_seconds, max(sessions, a.soak_conc))
            log("agents_soak %s: %s" % (name, vals[name]))
        self.rows.append(dict(workload="soak: %d concurrent streamed turns, %g s" % (a.soak_conc, a.soak_seconds),
                              vals=vals, fake=None))


def ms(v):
    return "—" if v != v else ("%.2f" % (v * 1e3) if v < 0.01 else "%.1f" % (v * 1e3))


def num(v):
    return "—" if v != v else ("%.0f" % v if v >= 100 else "%.2f" % v if v < 10 else "%.1f" % v)


def table(rows, names):
    both = len(names) == 2
    title = {"upstream": "upstream 0.0.41", "ours": "ours"}
    out = ["| workload | metric | fake alone | %s |%s" % (" | ".join(title[n] for n in names),
                                                      " ours / upstream |" if both else ""),
           "|---|---|---|%s%s" % ("---|" * len(names), "---|" if both else "")]
    route = {"ours": "/api/chat", "upstream": "/api/generate"}  # the inference each server makes

    def line(w, metric, fake, cells, ratio=""):
        out.append("| %s | %s | %s | %s |%s" % (w, metric, fake, " | ".join(cells), (" %s |" % ratio) if both else ""))

    for r in rows:
        v, w, f = r["vals"], r["workload"], r["fake"]
        if not any(n in v for n in names):
            continue

        def cells(fn):
            return [fn(v[n], n) if n in v else "—" for n in names]

        def ratio(key, fmt):
            if "upstream" in v and "ours" in v and v["upstream"][key] and v["ours"][key] == v["ours"][key]:
                return fmt % (v["ours"][key] / v["upstream"][key])
            return ""

        per = "round trips/s" if "round trip" in w else "turns/s"
        fake_rps = "%s / %s" % (num(f["/api/chat"]["rps"]), num(f["/api/generate"]["rps"])) if f else ""
        line(w, per, fake_rps, cells(lambda x, n: num(x["rps"])), ratio("rps", "%.0f×"))
        for p in ("p50", "p99"):
            fake_p = "%s / %s" % (ms(f["/api/chat"][p]), ms(f["/api/generate"][p])) if f else ""
            line(w, "%s latency (ms)" % p, fake_p, cells(lambda x, n, p=p: ms(x[p])), ratio(p, "%.3f×"))
        if f:
            for p in ("p50", "p99"):
                line(w, "added over the inference, %s (ms)" % p, "",
                     cells(lambda x, n, p=p: ms(x[p] - f[route[n]][p])))
        line(w, "completed / stored / lost turns", "", cells(lambda x, n: "%d / %d / %d" % (x["acked"], x["stored"],
                                                                                          x["lost"])))
        line(w, "errors", "", cells(lambda x, n: "%d" % (x["errors"] + x.get("bad", 0))))
        line(w, "peak RSS (MiB, process tree)", "", cells(lambda x, n: "%.0f" % x["peak_rss"]))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-build", action="store_true", help="use the ours venv as it is (no release build)")
    ap.add_argument("--ours-venv", type=Path, default=compare.DEFAULT_OURS_VENV)
    ap.add_argument("--ours-target-dir", type=Path, default=compare.DEFAULT_OURS_TARGET)
    ap.add_argument("--upstream-venv", type=Path, default=compare.DEFAULT_UPSTREAM_VENV)
    ap.add_argument("--tool-venv", type=Path, default=compare.DEFAULT_TOOL_VENV)
    ap.add_argument("--hf-home", type=Path, default=compare.DEFAULT_HF_HOME)
    ap.add_argument("--no-upstream", action="store_true")
    ap.add_argument("--no-ours", action="store_true")
    ap.add_argument("--no-upstream-soak", action="store_true", help="run the soak on ours only")
    ap.add_argument("--fake-port", type=int, default=18001)
    ap.add_argument("--upstream-port", type=int, default=15000)
    ap.add_argument("--ours-port", type=int, default=15001)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--conc", default="1,8,64")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per point on ours")
    ap.add_argument("--upstream-duration", type=float, default=15.0,
                    help="seconds per point on upstream (its turns take ~0.5 s each)")
    ap.add_argument("--sessions", type=int, default=512, help="sessions each point's turns go round (ours)")
    ap.add_argument("--upstream-sessions", type=int, default=64,
                    help="the same on upstream, which completes a few turns per second (and creates sessions slowly)")
    ap.add_argument("--tool-conc", default="1,8")
    ap.add_argument("--tool-seconds", type=float, default=5.0)
    ap.add_argument("--upstream-tool-seconds", type=float, default=15.0)
    ap.add_argument("--soak-conc", type=int, default=256)
    ap.add_argument("--soak-seconds", type=float, default=30.0)
    ap.add_argument("--timeout", type=int, default=60, help="seconds a single turn may take")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--model", default="Llama3.1-8B-Instruct")
    ap.add_argument("--fake-model", default="llama3.1:8b-instruct-fp16")
    ap.add_argument("--start-timeout", type=float, default=240.0)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args()
    a.conc = [int(x) for x in a.conc.split(",") if x]
    a.tool_conc = [int(x) for x in a.tool_conc.split(",") if x]
    workloads = [w for w in a.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit("unknown workloads: %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(WORKLOADS)))
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    names = [n for n in ("upstream", "ours") if not getattr(a, "no_" + n)]
    a.results.mkdir(parents=True, exist_ok=True)
    logs = a.results / "logs"
    logs.mkdir(exist_ok=True)

    if "upstream" in names:
        compare.ensure_upstream_venv(a.upstream_venv, HERE / "baseline-freeze.txt")
        compare.ensure_hf_cache(a.upstream_venv, a.hf_home)
    if "ours" in names and not a.no_build:
        compare.build_ours(a.ours_venv, a.ours_target_dir)
    label = compare.build_label(a.ours_venv) if "ours" in names else "not measured"
    fake_py = compare.tool_python(a.tool_venv)

    state = Path(tempfile.mkdtemp(prefix="lsrs-bench-agents."))
    servers, dbs = {}, {}
    if "upstream" in names:
        cfg = state / "upstream-run.yaml"
        cfg.write_text((HERE / "run-upstream-full.yaml").read_text().replace("__FAKE_PORT__", str(a.fake_port))
                       .replace("__STATE_DIR__", str(state)))
        dbs["upstream"] = state / "agents_store.db"
        env = dict(os.environ, HF_HOME=str(a.hf_home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        env.pop("VIRTUAL_ENV", None)
        servers["upstream"] = Server("upstream", [a.upstream_venv / "bin/python", "-m",
                                                  "llama_stack.distribution.server.server", "--yaml_config", cfg,
                                                  "--port", a.upstream_port, "--disable_ipv6"],
                                     a.upstream_port, env, logs / "agents-upstream.log")
    if "ours" in names:
        cfg = state / "ours-run.yaml"
        cfg.write_text((HERE / "run-ours-agents.yaml").read_text().replace("__FAKE_PORT__", str(a.fake_port))
                       .replace("__STATE_DIR__", str(state)))
        dbs["ours"] = state / "ours_agents_store.db"
        env = dict(os.environ, VIRTUAL_ENV=str(a.ours_venv), LLAMA_STACK_CONFIG_DIR=str(state / "ours-home"))
        servers["ours"] = Server("ours", [a.ours_venv / "bin/llama", "stack", "run", cfg, "--port", a.ours_port],
                                 a.ours_port, env, logs / "agents-ours.log")
    fake = Server("fake", [fake_py, HERE.parent / "tests/support/fake_backend.py", "--port", a.fake_port,
                           "--tool-calls"], a.fake_port, dict(os.environ), logs / "agents-fake.log")
    for s in list(servers.values()) + [fake]:
        Path(s.log_path).unlink(missing_ok=True)

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    run = Run(a, servers, dbs, a.fake_port, tempfile.mkdtemp(prefix="lsrs-bench-agents-lua."))
    t0 = time.perf_counter()
    try:
        fake.start()
        fake.wait_ready(10)
        for s in servers.values():
            s.start()
            s.wait_ready(a.start_timeout)
        for w in workloads:
            getattr(run, w)()
    finally:
        for s in list(servers.values()) + [fake]:
            s.stop()
    md = ["## Agent turns: upstream 0.0.41 vs ours (%s)" % time.strftime("%Y-%m-%d %H:%M"),
          "",
          "- ours: %s, commit %s; upstream: %s" % (label, compare.git_rev(), a.upstream_venv),
          "- fake: `fake_backend.py --tool-calls`, %d tokens per answer; agents state in sqlite on both sides; "
          "turns go round %d sessions per point on ours, %d on upstream; wrk %g s per point on ours, %g s on upstream; "
          "load average at the end: %s"
          % (a.tokens, a.sessions, a.upstream_sessions, a.duration, a.upstream_duration, " ".join(open("/proc/loadavg").read().split()[:3])),
          "- fake alone: req/s and p50/p99 of the inference each server makes, `/api/chat` (ours) / `/api/generate`"
          " with a raw prompt (upstream); `added over the inference` is a server's turn latency minus its route's"
          " figure at the same concurrency",
          "- measured in %.0f s" % (time.perf_counter() - t0),
          "",
          table(run.rows, names)]
    text = "\n".join(md)
    print(text)
    (a.results / "agents.md").write_text(text + "\n")
    (a.results / "agents.json").write_text(json.dumps(run.rows, indent=1, default=str))


if __name__ == "__main__":
    main()

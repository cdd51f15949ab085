#!/usr/bin/env python3
"""What telemetry costs: our server on one run config three ways, side by side in one run.

  off      no telemetry provider (every span a no-op)
  console  `meta-reference`: events printed through the process log (to a file) and traces kept
  otlp     `remote::opentelemetry-jaeger`: spans and metrics exported over OTLP/HTTP to a local
           receiver (a small process here that answers like a collector and counts what arrives)

All three servers run at once against the same zero-delay fake Ollama (tests/support/fake_backend.py);
each point is measured on the three in turn, in a rotating order, `--rounds` times, and the
median of the rounds is reported, so the three columns share the machine's state.

Workloads: chat_completion non-streamed and streamed (wrk), agent turns (streamed, no shields; the
load client of load.py, one session per client). Then Llama Guard's added latency on the `off`
server: sequential agent turns with an input and an output `llama_guard` shield against the same
turns without shields; each shielded turn makes two guard calls, whose own time is the fake's answer
to the guard request the server sends (measured directly, same client). Per shielded turn:
added = (shielded − plain) − 2 × guard call; per shield call: half of it.

  python bench/telemetry.py --python ~/.cache/lsrs/bench-venv/bin/python [--build] [--rounds 3]

--build makes a release wheel first (`maturin build --release` into --target-dir, installed into
the venv of --python). Output: Markdown tables on stdout and in bench/results/telemetry.md.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402  (servers, wrk, the release build)
import load  # noqa: E402  (the stdlib HTTP client and closed loops)

MODES = ("off", "console", "otlp")
MODEL = "Llama3.1-8B-Instruct"
GUARD = "Llama-Guard-3-8B"

RECEIVER = r'''
import sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
counts = {"requests": 0, "bytes": 0}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        with lock:
            counts["requests"] += 1
            counts["bytes"] += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        with lock:
            body = ("%d %d" % (counts["requests"], counts["bytes"])).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def log(*parts):
    print("[%s]" % time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def run_config(mode, fake_port, receiver_port, state):
    telemetry = {
        "off": None,
        "console": {"provider_id": "tel", "provider_type": "meta-reference", "config": {}},
        "otlp": {"provider_id": "tel", "provider_type": "remote::opentelemetry-jaeger",
                 "config": {"otlp_endpoint": "http://127.0.0.1:%d" % receiver_port, "service_name": "bench"}},
    }[mode]
    cfg = {
        "version": "2",
        "image_name": "bench-telemetry-" + mode,
        "apis": ["inference", "safety", "agents", "models", "shields", "inspect"] + (["telemetry"] if telemetry else []),
        "providers": {
            "inference": [{"provider_id": "ollama0", "provider_type": "remote::ollama",
                           "config": {"url": "http://127.0.0.1:%d" % fake_port}}],
            "safety": [{"provider_id": "meta0", "provider_type": "meta-reference",
                        "config": {"llama_guard_shield": {"model": GUARD}, "enable_prompt_guard": False}}],
            "agents": [{"provider_id": "meta0", "provider_type": "meta-reference",
                        "config": {"persistence_store": {"type": "sqlite", "db_path": str(state / "agents.db")}}}],
        },
        "metadata_store": {"type": "sqlite", "db_path": str(state / "registry.db")},
    }
    if telemetry:
        cfg["providers"]["telemetry"] = [telemetry]
    return cfg


def agent_config(tokens, shields):
    return {"model": MODEL, "instructions": "You are a helpful assistant.", "enable_session_persistence": False,
            "max_infer_iters": 1, "sampling_params": {"strategy": "greedy", "max_tokens": tokens},
            "input_shields": shields, "output_shields": shields, "tools": [], "tool_choice": "auto",
            "tool_prompt_format": "json"}


def new_sessions(port, tokens, shields, n):
    url = "http://127.0.0.1:%d" % port
    st, b = load.sync_req(url, "POST", "/agents/create", {"agent_config": agent_config(tokens, shields)})
    assert st == 200, b[:300]
    aid = json.loads(b)["agent_id"]
    sids = []
    for i in range(n):
        st, b = load.sync_req(url, "POST", "/agents/session/create", {"agent_id": aid, "session_name": "b%d" % i})
        assert st == 200, b[:300]
        sids.append(json.loads(b)["session_id"])
    return aid, sids


def turn_body(aid, sids):
    return lambda wi: {"agent_id": aid, "session_id": sids[wi], "stream": True,
                       "messages": [{"role": "user", "content": "Hello!"}]}


def agent_point(port, conc, turns, seconds, tokens, shields=()):
    aid, sids = new_sessions(port, tokens, list(shields), conc)
    url = "http://127.0.0.1:%d" % port
    st, b = load.sync_req(url, "POST", "/agents/turn/create", turn_body(aid, sids)(0))
    evs = load.sse_events(b)
    assert st == 200 and evs and "turn_complete" in json.dumps(evs[-1]), b[-300:]
    if shields:
        assert b"shield_call" in b, "no shield step in a shielded turn: %r" % b[-500:]
    return asyncio.run(load.closed_loop(url, "POST", "/agents/turn/create", turn_body(aid, sids), conc,
                                        turns * conc, seconds))


def guard_request_body():
    """The shape of what the server sends the guard model (a non-streamed Ollama chat): the fake
    answers every guard model with `safe` whatever the prompt."""
    return {"model": "xe/llamaguard3:latest", "stream": False, "raw": True,
            "messages": [{"role": "user", "content": "Task: Check if there is unsafe content in 'User' messages "
                          "in conversations according our safety policy with the below categories.\n\n"
                          "<BEGIN CONVERSATION>\n\nUser: Hello!\n\n<END CONVERSATION>"}],
            "options": {"temperature": 0.0, "num_predict": 16}}


def median_of(results, key):
    xs = [r[key] for r in results if r and r.get(key) == r.get(key)]
    return statistics.median(xs) if xs else float("nan")


def machine_load():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter whose environment holds our wheel")
    ap.add_argument("--build", action="store_true", help="release-build the wheel into --python's venv first")
    ap.add_argument("--target-dir", default=str(compare.DEFAULT_OURS_TARGET))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per wrk point")
    ap.add_argument("--conc", default="1,16", help="wrk concurrency levels for chat")
    ap.add_argument("--agent-conc", default="1,8")
    ap.add_argument("--agent-turns", type=int, default=60, help="turns per client per agent point")
    ap.add_argument("--agent-tokens", type=int, default=32)
    ap.add_argument("--guard-turns", type=int, default=150, help="sequential turns per guard point and round")
    ap.add_argument("--base-port", type=int, default=18200)
    ap.add_argument("--out-md", default=str(HERE / "results/telemetry.md"))
    a = ap.parse_args()

    py = Path(a.python)
    if a.build:
        compare.build_ours(py.parent.parent, Path(a.target_dir))
    label = compare.build_label(py.parent.parent)
    fake_port, receiver_port = a.base_port, a.base_port + 1
    ports = {m: a.base_port + 2 + i for i, m in enumerate(MODES)}
    results_dir = HERE / "results"
    (results_dir / "logs").mkdir(parents=True, exist_ok=True)
    state_root = Path(tempfile.mkdtemp(prefix="lsrs-bench-telemetry-"))
    load_before = machine_load()

    tool_py = compare.tool_python(compare.DEFAULT_TOOL_VENV)
    fake = compare.Server("fake", [tool_py, REPO / "tests/support/fake_backend.py", "--port", fake_port, "--tokens", "32"],
                          fake_port, dict(os.environ), results_dir / "logs/telemetry-fake.log")
    receiver = compare.Server("receiver", [sys.executable, "-c", RECEIVER, receiver_port], receiver_port,
                              dict(os.environ), results_dir / "logs/telemetry-receiver.log")
    servers = {}
    try:
        fake.start()
        receiver.start()
        for name, port in ((fake.name, fake_port), (receiver.name, receiver_port)):
            deadline = time.time() + 20
            while time.time() < deadline:
                try:
                    compare.http_status(port, "/api/tags" if name == "fake" else "/")
                    break
                except OSError:
                    time.sleep(0.05)
        for m in MODES:
            state = state_root / m
            state.mkdir()
            cfg_path = state / "run.yaml"
            cfg_path.write_text(json.dumps(run_config(m, fake_port, receiver_port, state)))
            env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(state))
            s = compare.Server(m, [py, "-m", "llama_stack", "stack", "run", cfg_path, "--port", ports[m],
                                   "--host", "127.0.0.1"], ports[m], env, results_dir / ("logs/telemetry-%s.log" % m))
            s.start()
            s.wait_ready(60)
            servers[m] = s
        log("servers up:", {m: s.port for m, s in servers.items()}, "build:", label)

        rows = {}  # row -> mode -> [result per round]

        def measure(row, fn):
            for r in range(a.rounds):
                order = MODES[r % 3:] + MODES[:r % 3]
                for m in order:
                    servers[m].wait_idle(20)
                    rows.setdefault(row, {}).setdefault(m, []).append(fn(servers[m]))
            log(row, {m: round(median_of(v, "rps"), 1) for m, v in rows[row].items()})

        with tempfile.TemporaryDirectory() as lua_dir:
            for stream in (False, True):
                body = load.chat_body(MODEL, 32, stream)
                lua = compare.write_lua(lua_dir, "chat-%s" % stream, body)
                for c in [int(x) for x in a.conc.split(",")]:
                    row = "chat_completion %s 32 tok, c=%d (wrk)" % ("stream" if stream else "non-stream", c)
                    measure(row, lambda s, c=c, lua=lua: compare.wrk(s.port, "/inference/chat_completion", c,
                                                                      a.duration, lua))
        for c in [int(x) for x in a.agent_conc.split(",")]:
            measure("agent turn (stream, %d tok, no shields), c=%d" % (a.agent_tokens, c),
                    lambda s, c=c: agent_point(s.port, c, a.agent_turns, 60, a.agent_tokens))

        # Llama Guard's added latency, on the server without telemetry.
        guard = {"plain": [], "shielded": [], "guard call": []}
        fake_url = "http://127.0.0.1:%d" % fake_port
        for r in range(a.rounds):
            servers["off"].wait_idle(20)
            guard["plain"].append(agent_point(servers["off"].port, 1, a.guard_turns, 120, a.agent_tokens))
            guard["shielded"].append(agent_point(servers["off"].port, 1, a.guard_turns, 120, a.agent_tokens,
                                                 shields=("llama_guard",)))
            guard["guard call"].append(asyncio.run(load.closed_loop(fake_url, "POST", "/api/chat",
                                                                    guard_request_body(), 1, a.guard_turns, 60)))
        log("guard", {k: round(median_of(v, "p50") * 1000, 3) for k, v in guard.items()})
        receiver_counts = load.sync_req("http://127.0.0.1:%d" % receiver_port, "GET", "/")[1].decode().split()
    finally:
        for s in servers.values():
            s.stop()
        fake.stop()
        receiver.stop()
    load_after = machine_load()

    out = []
    out.append("Build: %s. Machine load (1/5/15 min) before: %s, after: %s; %d cores."
               % (label, " ".join(load_before), " ".join(load_after), os.cpu_count()))
    out.append("Each cell: median of %d rounds; within a round the three servers are measured one after "
               "another (rotating order). OTLP receiver got %s requests, %s bytes." % (a.rounds, *receiver_counts))
    out.append("")
    out.append("| workload | off | console | otlp | console / off | otlp / off |")
    out.append("|---|---|---|---|---|---|")
    for row, per in rows.items():
        rps = {m: median_of(per.get(m, []), "rps") for m in MODES}
        p50 = {m: median_of(per.get(m, []), "p50") * 1000 for m in MODES}
        errs = sum(x.get("errors", 0) for v in per.values() for x in v)
        cell = lambda m: "%.1f/s (p50 %.2f ms)" % (rps[m], p50[m])  # noqa: E731
        out.append("| %s%s | %s | %s | %s | %.3f | %.3f |" % (
            row, " (%d errors)" % errs if errs else "", cell("off"), cell("console"), cell("otlp"),
            rps["console"] / rps["off"], rps["otlp"] / rps["off"]))
    out.append("")
    plain = median_of(guard["plain"], "p50") * 1000
    shielded = median_of(guard["shielded"], "p50") * 1000
    call = median_of(guard["guard call"], "p50") * 1000
    added = shielded - plain - 2 * call
    out.append("| Llama Guard (telemetry off, c=1, %d turns × %d rounds) | p50 |" % (a.guard_turns, a.rounds))
    out.append("|---|---|")
    out.append("| turn without shields | %.3f ms |" % plain)
    out.append("| turn with input + output `llama_guard` | %.3f ms |" % shielded)
    out.append("| one guard call to the fake, alone (the guard model's own time) | %.3f ms |" % call)
    out.append("| added per shielded turn: shielded − plain − 2 × guard call | %.3f ms |" % added)
    out.append("| added per shield call | %.3f ms |" % (added / 2))
    text = "\n".join(out)
    print(text)
    Path(a.out_md).write_text(text + "\n")


if __name__ == "__main__":
    main()

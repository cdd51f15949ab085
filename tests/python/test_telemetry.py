"""Traces end to end: an agent turn over HTTP (the official client reads the trace back with
`telemetry.get_trace`, and adds a span of its own with `telemetry.log_event`), and a chat through
the in-process API. The spans are read from the trace store the run config names, where
`meta-reference` keeps them: each has the parent it should, and none outlives its parent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import httpx
import pytest
from llama_stack_client import LlamaStackClient

from conftest import run_config
from test_agents import TEXT_MODEL, agent_config, agents_config
from llama_stack.apis.telemetry import Trace
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import UserMessage


@pytest.fixture
def backend(fake_ollama):
    return fake_ollama(models=["llama3.2:3b-instruct-fp16"], tokens=6)


def with_trace_store(cfg: dict, state_dir: Path) -> dict:
    store = {"type": "sqlite", "db_path": str(state_dir / "traces.db")}
    cfg["providers"]["telemetry"] = [
        {"provider_id": "console", "provider_type": "meta-reference", "config": {"persistence_store": store}}
    ]
    return cfg


# Read from another process: the stack in this process holds the file open with its own copy of
# SQLite, and two copies in one process do not see each other's POSIX locks (closing Python's
# connection could then checkpoint and remove the write-ahead log under the stack's).
_READ_STORE = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute(
    "SELECT value FROM kvstore WHERE key >= ? AND key < ? ORDER BY key", (sys.argv[2], sys.argv[2] + "\\uffff")
).fetchall()
print(json.dumps([v for (v,) in rows]))
"""


def stored(state_dir: Path, prefix: str) -> List[dict]:
    out = subprocess.run(
        [sys.executable, "-c", _READ_STORE, str(state_dir / "traces.db"), prefix],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    return [json.loads(v) for v in json.loads(out)]


def nested(spans: List[dict]) -> Dict[str, dict]:
    """Checks that spans form one tree (one root, every parent present, each span inside its
    parent's time, all ended); answers them by name."""
    by_id = {s["span_id"]: s for s in spans}
    assert len([s for s in spans if s.get("parent_span_id") is None]) == 1, spans
    for s in spans:
        assert s.get("end_time"), f"{s['name']} did not end: {spans}"
        parent = s.get("parent_span_id")
        if parent is not None:
            p = by_id[parent]
            # Fixed-width UTC timestamps: string order is time order.
            assert p["start_time"] <= s["start_time"] and s["end_time"] <= p["end_time"], (s, p)
    return {s["name"]: s for s in spans}


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Events are stored off the request path: waits until `check` answers something true."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_agent_turn_over_http_is_one_trace(backend, state_dir, server):
    s = server(with_trace_store(agents_config(state_dir, backend), state_dir))
    client = LlamaStackClient(base_url=s.url)
    agent = client.agents.create(agent_config=agent_config())
    session = client.agents.session.create(agent_id=agent.agent_id, session_name="traced")
    body = {
        "agent_id": agent.agent_id,
        "session_id": session.session_id,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": True,
    }
    with httpx.stream("POST", f"{s.url}/agents/turn/create", json=body, timeout=30) as r:
        assert r.status_code == 200
        trace_id = r.headers["x-llamastack-trace-id"]
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert "turn_complete" in events[-1]

    trace = eventually(lambda: (t := client.telemetry.get_trace(trace_id=trace_id)).end_time and t)
    assert trace and trace.trace_id == trace_id

    # The client's own span joins the trace under the request's root.
    for event in (
        {"type": "structured_log", "trace_id": trace_id, "span_id": "clientspan01",
         "timestamp": "2030-01-01T00:00:00Z",
         "payload": {"type": "span_start", "name": "client.render", "parent_span_id": trace.root_span_id}},
        {"type": "structured_log", "trace_id": trace_id, "span_id": "clientspan01",
         "timestamp": "2030-01-01T00:00:01Z", "payload": {"type": "span_end", "status": "ok"}},
    ):
        client.telemetry.log_event(event=event)

    def client_span_stored():
        spans = stored(state_dir, f"telemetry:span:{trace_id}:")
        return any(sp["name"] == "client.render" and sp.get("end_time") for sp in spans) and spans

    spans = eventually(client_span_stored)
    assert spans, stored(state_dir, f"telemetry:span:{trace_id}:")
    # The server's spans form one tree; the client's span hangs under its root (its times are
    # the client's own), as do the two log_event calls' spans, which joined the trace.
    client_span = next(sp for sp in spans if sp["name"] == "client.render")
    assert client_span["parent_span_id"] == trace.root_span_id
    assert client_span["start_time"].startswith("2030-01-01T00:00:00")
    server_spans = [sp for sp in spans if sp["name"] not in ("client.render", "/telemetry/log_event")]
    tree = nested(server_spans)
    root = tree["/agents/turn/create"]
    assert root["span_id"] == trace.root_span_id
    assert trace.end_time is not None and str(root["end_time"]).startswith(trace.end_time.strftime("%Y-%m-%dT%H:%M:%S"))
    turn = tree["agents.turn"]
    assert turn["parent_span_id"] == root["span_id"]
    assert turn["attributes"]["agent_id"] == agent.agent_id
    assert turn["attributes"]["session_id"] == session.session_id
    assert tree["agents.inference"]["parent_span_id"] == turn["span_id"]
    assert tree["agents.inference"]["attributes"]["model_id"] == TEXT_MODEL

    # An unknown trace is a client error naming it.
    with pytest.raises(Exception, match="nope"):
        client.telemetry.get_trace(trace_id="nope")


@pytest.mark.asyncio
async def test_in_process_chat_is_a_trace_get_trace_reads(backend, state_dir):
    cfg = with_trace_store(run_config(state_dir, {"ollama": backend}), state_dir)
    async with LlamaStack(cfg) as stack:
        r = await stack.inference.chat_completion(model=TEXT_MODEL, messages=[UserMessage(content="hello")])
        assert r.completion_message.content
        chunks = [c async for c in stack.inference.chat_completion(
            model=TEXT_MODEL, messages=[UserMessage(content="again")], stream=True)]
        assert chunks[-1].event.event_type.value == "complete"
        with pytest.raises(ValueError, match="no-such-trace"):
            await stack.telemetry.get_trace(trace_id="no-such-trace")

        def chats_stored():
            found = []
            for t in stored(state_dir, "telemetry:trace:"):
                spans = stored(state_dir, f"telemetry:span:{t['trace_id']}:")
                if t.get("end_time") and any(sp["name"] == "/inference/chat_completion" for sp in spans):
                    found.append((t, nested(spans)))
            return len(found) == 2 and found

        chats = eventually(chats_stored)
        assert chats, stored(state_dir, "telemetry:")
        for t, spans in chats:
            got = await stack.telemetry.get_trace(trace_id=t["trace_id"])
            assert isinstance(got, Trace)
            assert got.trace_id == t["trace_id"] and got.root_span_id == t["root_span_id"]
            assert got.end_time is not None
            root, inference = spans["/inference/chat_completion"], spans["inference.chat_completion"]
            assert root["span_id"] == got.root_span_id and root.get("parent_span_id") is None
            assert inference["parent_span_id"] == root["span_id"]
            assert inference["attributes"]["model_id"] == TEXT_MODEL
        assert sorted(s["inference.chat_completion"]["attributes"]["stream"] for _, s in chats) == ["false", "true"]

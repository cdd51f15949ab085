"""Agent state across processes: a server killed with SIGKILL in the middle of streamed turns
restarts with every completed turn and nothing of the interrupted ones (on sqlite and on
PostgreSQL), and two servers on one Redis or one PostgreSQL (each started here on a free loopback
port) serve the same agents, sessions and turns."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from llama_stack_client import LlamaStackClient

from conftest import free_port, run_config

MODEL_TAG = "llama3.2:3b-instruct-fp16"
MODEL = "Llama3.2-3B-Instruct"


class SlowOllama(BaseHTTPRequestHandler):
    """Ollama's native API (`/api/tags`, `/api/ps`, streamed `/api/chat`), one word per 50 ms."""

    words = 40

    def log_message(self, *args):  # quiet
        pass

    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/api/tags") or self.path.startswith("/api/ps"):
            model = {"name": MODEL_TAG, "model": MODEL_TAG, "size": 1, "digest": "0" * 12,
                     "details": {"format": "gguf", "family": "llama"}}
            self._json({"models": [model]})
        else:
            self.send_response(200)
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        now = "2024-10-10T00:00:00Z"
        if not body.get("stream", True):
            self._json({"model": MODEL_TAG, "created_at": now, "done": True, "done_reason": "stop",
                        "message": {"role": "assistant", "content": "ok"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        try:
            for i in range(self.words):
                line = {"model": MODEL_TAG, "created_at": now, "done": False,
                        "message": {"role": "assistant", "content": f" w{i}"}}
                self.wfile.write(json.dumps(line).encode() + b"\n")
                self.wfile.flush()
                time.sleep(0.05)
            done = {"model": MODEL_TAG, "created_at": now, "done": True, "done_reason": "stop",
                    "message": {"role": "assistant", "content": ""}}
            self.wfile.write(json.dumps(done).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    protocol_version = "HTTP/1.0"


@pytest.fixture
def slow_ollama():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowOllama)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def config(state_dir: Path, url: str, store: dict) -> dict:
    cfg = run_config(state_dir, {"ollama": url})
    cfg["apis"] = ["inference", "telemetry", "agents"]
    cfg["providers"]["agents"] = [
        {"provider_id": "meta-reference", "provider_type": "meta-reference", "config": {"persistence_store": store}}
    ]
    return cfg


AGENT = {"model": MODEL, "instructions": "Be brief", "enable_session_persistence": True}


def run_turn(client: LlamaStackClient, agent_id: str, session_id: str, text: str):
    chunks = list(
        client.agents.turn.create(
            agent_id=agent_id, session_id=session_id, messages=[{"role": "user", "content": text}], stream=True
        )
    )
    return chunks[-1].event.payload.turn


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store(request, state_dir: Path) -> dict:
    if request.param == "sqlite":
        return {"type": "sqlite", "db_path": str(state_dir / "agents.db")}
    return postgres_store(request.getfixturevalue("postgres_port"))


def test_sigkill_mid_turn_keeps_every_completed_turn_and_nothing_else(slow_ollama, state_dir, server, durable_store):
    store = durable_store
    cfg = config(state_dir, slow_ollama, store)
    first = server(cfg)
    client = LlamaStackClient(base_url=first.url, max_retries=0)
    agent = client.agents.create(agent_config=AGENT).agent_id
    sessions = [client.agents.session.create(agent_id=agent, session_name=f"s{i}").session_id for i in range(3)]
    done = [run_turn(client, agent, s, "first").turn_id for s in sessions]

    # Three turns streaming at once; kill the server once each has sent some text.
    started = threading.Barrier(4, timeout=60)

    def interrupted(session_id: str) -> None:
        stream = client.agents.turn.create(
            agent_id=agent, session_id=session_id, messages=[{"role": "user", "content": "second"}], stream=True
        )
        seen = 0
        try:
            for chunk in stream:
                if chunk.event and chunk.event.payload.event_type == "step_progress":
                    seen += 1
                    if seen == 3:
                        started.wait()
        except Exception:  # the connection dies with the server
            pass

    threads = [threading.Thread(target=interrupted, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    started.wait()
    first.stop(signal.SIGKILL)
    for t in threads:
        t.join(30)

    second = server(cfg)
    client = LlamaStackClient(base_url=second.url, max_retries=0)
    for s, turn_id in zip(sessions, done):
        got = client.agents.session.retrieve(agent_id=agent, session_id=s)
        assert [t.turn_id for t in got.turns] == [turn_id]
        assert got.turns[0].output_message.content.strip().startswith("w0")
        assert client.agents.turn.retrieve(agent_id=agent, turn_id=turn_id).turn_id == turn_id
    after = run_turn(client, agent, sessions[0], "third")
    got = client.agents.session.retrieve(agent_id=agent, session_id=sessions[0])
    assert [t.turn_id for t in got.turns] == [done[0], after.turn_id]


@pytest.fixture
def redis_port(tmp_path: Path):
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.fail("redis-server not found: install the Debian package `redis-server` (scripts/install-test-services.sh)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield port
    proc.kill()
    proc.wait()


PG_USER = "llama"
PG_PASSWORD = "agents-test-secret"


def postgres_bin_dir() -> Path:
    """Debian keeps the server binaries under /usr/lib/postgresql/<major>/bin, out of PATH."""
    found = sorted(
        (Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if Path(d, "postgres").is_file()),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    pytest.fail("PostgreSQL server binaries not found: install the Debian package `postgresql` "
                "(scripts/install-test-services.sh)")


def unprivileged_account():
    """postgres refuses to run as root: then it runs as the `postgres` (or `nobody`) account."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root, and neither a `postgres` nor a `nobody` account exists to run PostgreSQL as")


def as_account(account, argv: list) -> list:
    # setpriv replaces itself with the program, so the pid is the server's own and signals reach it.
    if account is None:
        return argv
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--", *argv]


@pytest.fixture
def postgres_port():
    """A private PostgreSQL server (password authentication over TCP) on a free loopback port."""
    bin_dir = postgres_bin_dir()
    # Under /tmp itself: pytest's own temporary directories are closed to other accounts.
    work = Path(tempfile.mkdtemp(prefix="lsrs-agents-pg-"))
    (work / "pwfile").write_text(PG_PASSWORD)
    account = unprivileged_account()
    if account is not None:
        for path in (work, work / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
    init = subprocess.run(
        as_account(account, [str(bin_dir / "initdb"), "-D", str(work / "data"), "-U", PG_USER, "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", f"--pwfile={work / 'pwfile'}"]),
        cwd=work, capture_output=True, text=True,
    )
    if init.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr}")
    port = free_port()
    log = open(work / "postgres.log", "ab")
    proc = subprocess.Popen(
        as_account(account, [str(bin_dir / "postgres"), "-D", str(work / "data"), "-k", str(work), "-p", str(port),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
        cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-d", "postgres"])
        if ready.returncode == 0:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        ready = None
    if ready is None or ready.returncode != 0:
        proc.kill()
        proc.wait()
        text = (work / "postgres.log").read_text(errors="replace")
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start:\n{text[-2000:]}")
    yield port
    proc.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    shutil.rmtree(work, ignore_errors=True)


def postgres_store(port: int) -> dict:
    return {"type": "postgres", "host": "127.0.0.1", "port": port, "db": "postgres",
            "user": PG_USER, "password": PG_PASSWORD, "table_name": "agents_store"}


@pytest.fixture(params=["redis", "postgres"])
def shared_store(request) -> dict:
    if request.param == "redis":
        return {"type": "redis", "host": "127.0.0.1", "port": request.getfixturevalue("redis_port")}
    return postgres_store(request.getfixturevalue("postgres_port"))


def test_two_servers_on_one_store_share_agents_sessions_and_turns(slow_ollama, state_dir, server, shared_store):
    SlowOllama.words = 3
    try:
        store = shared_store
        a = LlamaStackClient(base_url=server(config(state_dir, slow_ollama, store)).url, max_retries=0)
        b = LlamaStackClient(base_url=server(config(state_dir, slow_ollama, store)).url, max_retries=0)
        agent = a.agents.create(agent_config=AGENT).agent_id
        session = b.agents.session.create(agent_id=agent, session_name="shared").session_id
        t1 = run_turn(a, agent, session, "one")
        t2 = run_turn(b, agent, session, "two")
        for client in (a, b):
            got = client.agents.session.retrieve(agent_id=agent, session_id=session)
            assert [t.turn_id for t in got.turns] == [t1.turn_id, t2.turn_id]
        assert a.agents.turn.retrieve(agent_id=agent, turn_id=t2.turn_id).turn_id == t2.turn_id
        assert b.agents.turn.retrieve(agent_id=agent, turn_id=t1.turn_id).turn_id == t1.turn_id

        # A turn started on one server is read on the other while it streams and once it is done.
        SlowOllama.words = 20
        stream = a.agents.turn.create(
            agent_id=agent, session_id=session, messages=[{"role": "user", "content": "three"}], stream=True
        )
        turn_id = None
        for chunk in stream:
            payload = chunk.event.payload
            if payload.event_type == "turn_start":
                turn_id = payload.turn_id
            elif payload.event_type == "step_progress":
                # Still running on `a`: nothing of it is visible yet, on either server.
                got = b.agents.session.retrieve(agent_id=agent, session_id=session)
                assert [t.turn_id for t in got.turns] == [t1.turn_id, t2.turn_id]
                break
        for chunk in stream:
            pass
        assert turn_id is not None
        third = b.agents.turn.retrieve(agent_id=agent, turn_id=turn_id)
        assert third.output_message.content.strip().startswith("w0")
        got = b.agents.session.retrieve(agent_id=agent, session_id=session)
        assert [t.turn_id for t in got.turns] == [t1.turn_id, t2.turn_id, turn_id]

        b.agents.delete(agent_id=agent)
        with pytest.raises(Exception) as err:
            a.agents.session.create(agent_id=agent, session_name="gone")
        assert agent in str(err.value.response.text)
    finally:
        SlowOllama.words = 40

"""Fixtures shared by the end-to-end tests: a fake Ollama (our own, following Ollama's wire
format), run configs pointing at it, and a real `llama stack run` server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FAKE_BACKEND = ROOT / "tests" / "support" / "fake_backend.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}:\n{out}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keeps every file a stack writes inside the test's folder."""
    d = tmp_path / "llama-home"
    d.mkdir()
    monkeypatch.setenv("LLAMA_STACK_CONFIG_DIR", str(d))
    return d


@pytest.fixture
def fake_ollama() -> Iterator[Callable[..., str]]:
    """Starts fake Ollama servers; returns their base URLs."""
    procs: List[subprocess.Popen] = []

    def start(models: Optional[List[str]] = None, tokens: int = 8) -> str:
        port = free_port()
        cmd = [sys.executable, str(FAKE_BACKEND), "--port", str(port), "--tokens", str(tokens)]
        if models:
            cmd += ["--models", ",".join(models)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/tags", proc)
        return url

    yield start
    for p in procs:
        p.kill()
        p.wait()


def run_config(state_dir: Path, ollamas: dict, **extra) -> dict:
    """A run config with one `remote::ollama` provider per entry of `ollamas` (id -> url)."""
    cfg = {
        "version": "2",
        "image_name": "e2e",
        "apis": ["inference", "telemetry"],
        "providers": {
            "inference": [
                {"provider_id": pid, "provider_type": "remote::ollama", "config": {"url": url}}
                for pid, url in ollamas.items()
            ],
            "telemetry": [{"provider_id": "console", "provider_type": "meta-reference", "config": {}}],
        },
        "metadata_store": {"type": "sqlite", "db_path": str(state_dir / "registry.db")},
    }
    cfg.update(extra)
    return cfg


class Server:
    def __init__(self, config_path: Path, env: dict) -> None:
        self.config_path = config_path
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_stack", "stack", "run", str(self.config_path), "--port", str(self.port), "--host", "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        wait_http(self.url + "/health", self.proc)
        return self

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.proc is not None
        return stop(self.proc, sig)

    def output(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.read()


@pytest.fixture
def server(tmp_path: Path, state_dir: Path) -> Iterator[Callable[[dict], Server]]:
    """Starts `llama stack run` on a run config; stops every server at the end."""
    servers: List[Server] = []

    def start(cfg: dict) -> Server:
        path = tmp_path / f"run-{len(servers)}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(state_dir))
        s = Server(path, env).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()

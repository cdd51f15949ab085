#!/usr/bin/env python3
"""Per-call cost of the ways a Python program reaches the stack, against the fake Ollama backend
(so the numbers are the stack's own overhead, not a model's):

- `LlamaStack` in process, and the implementations `resolve_impls_with_routing` returns;
- `llama_stack.apis.inference.client.InferenceClient` over HTTP to the server started with
  `python -m llama_stack.distribution.server.server`, and the official `llama_stack_client`.

    python bench/python_surface.py [--calls 200]

Prints one Markdown table (median and p90 per call, non-streamed and streamed chat completion).
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, List

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "support" / "fake_backend.py"
MODEL = "Llama3.1-8B-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(1000):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} did not answer")


async def measure(calls: int, fn: Callable[[], Awaitable[None]]) -> List[float]:
    for _ in range(min(10, calls)):
        await fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def row(name: str, plain: List[float], streamed: List[float]) -> str:
    def q(xs: List[float], p: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]

    return (
        f"| {name} | {statistics.median(plain):.2f} | {q(plain, 0.9):.2f} "
        f"| {statistics.median(streamed):.2f} | {q(streamed, 0.9):.2f} |"
    )


async def run(calls: int, config_path: Path, server_url: str) -> List[str]:
    from llama_models.llama3.api.datatypes import UserMessage
    from llama_stack_client import AsyncLlamaStackClient

    from llama_stack.apis.inference.client import InferenceClient
    from llama_stack.distribution.configure import parse_and_maybe_upgrade_config
    from llama_stack.distribution.datatypes import Api
    from llama_stack.distribution.resolver import resolve_impls_with_routing
    from llama_stack.distribution.stack import LlamaStack

    messages = [UserMessage(content="hello")]
    config = parse_and_maybe_upgrade_config(yaml.safe_load(config_path.read_text()))
    stack = await LlamaStack.create(config)
    impls = await resolve_impls_with_routing(config)
    http_client = InferenceClient(server_url)
    official = AsyncLlamaStackClient(base_url=server_url)

    def plain(target):  # type: ignore[no-untyped-def]
        async def call() -> None:
            await target.chat_completion(model=MODEL, messages=messages)

        return call

    def streamed(target):  # type: ignore[no-untyped-def]
        async def call() -> None:
            async for _ in target.chat_completion(model=MODEL, messages=messages, stream=True):
                pass

        return call

    async def official_plain() -> None:
        await official.inference.chat_completion(model=MODEL, messages=[{"role": "user", "content": "hello"}])

    async def official_streamed() -> None:
        stream = await official.inference.chat_completion(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], stream=True
        )
        async for _ in stream:
            pass

    rows = []
    for name, p, s in (
        ("LlamaStack (in process)", plain(stack.inference), streamed(stack.inference)),
        ("resolve_impls_with_routing (in process)", plain(impls[Api.inference]), streamed(impls[Api.inference])),
        ("InferenceClient over HTTP", plain(http_client), streamed(http_client)),
        ("llama_stack_client over HTTP", official_plain, official_streamed),
    ):
        rows.append(row(name, await measure(calls, p), await measure(calls, s)))
    await stack.close()
    await impls[Api.inference].shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    procs: List[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=tmp)
        try:
            fake_port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, str(FAKE), "--port", str(fake_port), "--tokens", "8", "--models", "llama3.1:8b-instruct-fp16"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            wait(f"http://127.0.0.1:{fake_port}/api/tags", procs[-1])
            config = {
                "version": "2",
                "image_name": "bench",
                "apis": ["inference"],
                "providers": {"inference": [
                    {"provider_id": "ollama", "provider_type": "remote::ollama", "config": {"url": f"http://127.0.0.1:{fake_port}"}}
                ]},
            }
            path = Path(tmp) / "run.yaml"
            path.write_text(yaml.safe_dump(config))
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "llama_stack.distribution.server.server", "--yaml_config", str(path),
                 "--port", str(port), "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            ))
            wait(f"http://127.0.0.1:{port}/health", procs[-1])
            os.environ["LLAMA_STACK_CONFIG_DIR"] = tmp
            rows = asyncio.run(run(args.calls, path, f"http://127.0.0.1:{port}"))
        finally:
            for p in procs:
                p.terminate()
                p.wait()
    print(f"chat_completion against the fake Ollama, {args.calls} sequential calls each, ms per call\n")
    print("| path | median | p90 | streamed median | streamed p90 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()

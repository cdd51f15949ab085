"""Programs that use the embedded provider in process end cleanly: status 0 and no fatal error at
interpreter exit, whether or not they close the stack, with a stream abandoned mid-way, a task
cancelled, work still in flight when the loop closes, or Ctrl-C during a call.

Each program runs as its own process, several times: the failures this guards against (a thread
entering the interpreter while it finalizes, llama.cpp still computing while the process exits)
are races.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

from test_embedded import cached_models, home  # noqa: F401  (fixtures)

RUNS = int(os.environ.get("LSRS_EXIT_RUNS", "10"))

PRELUDE = """
import asyncio, sys
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import SamplingParams, UserMessage

MODEL = "SmolLM2-135M-Instruct"
SHORT = SamplingParams(strategy="greedy", max_tokens=12)
LONG = [UserMessage(content="Write a very long story about a dragon and a knight.")]
HI = [UserMessage(content="Name a fruit.")]
"""

PROGRAMS: Dict[str, str] = {
    # The first thing a user writes: one answer, one streamed answer, stack never closed.
    "unclosed": """
        async def main():
            stack = LlamaStack()
            r = await stack.inference.chat_completion(model=MODEL, messages=HI, sampling_params=SHORT)
            parts = [c.event.delta async for c in stack.inference.chat_completion(
                model=MODEL, messages=HI, sampling_params=SHORT, stream=True)]
            print(r.completion_message.content, "".join(parts))
        asyncio.run(main())
    """,
    # Lists models, answers, closes the stack.
    "closed": """
        async def main():
            async with LlamaStack() as stack:
                await stack.models.list_models()
                await stack.inference.chat_completion(model=MODEL, messages=HI, sampling_params=SHORT)
                await stack.inference.embeddings(model="all-MiniLM-L6-v2", contents=["a cat"])
            print("closed")
        asyncio.run(main())
    """,
    # A streaming iterator left mid-stream.
    "abandoned": """
        async def main():
            stack = LlamaStack()
            n = 0
            async for _ in stack.inference.chat_completion(model=MODEL, messages=LONG, stream=True):
                n += 1
                if n == 3:
                    break
            print("abandoned after", n)
        asyncio.run(main())
    """,
    # A call cancelled while the model generates.
    "cancelled": """
        async def main():
            stack = LlamaStack()
            await stack.models.list_models()
            task = asyncio.ensure_future(stack.inference.chat_completion(model=MODEL, messages=LONG))
            await asyncio.sleep(0.3)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("cancelled")
        asyncio.run(main())
    """,
    # The loop closes with a call and a stream still running.
    "in_flight": """
        async def main():
            stack = LlamaStack()
            await stack.models.list_models()
            asyncio.ensure_future(stack.inference.chat_completion(model=MODEL, messages=LONG))
            stream = stack.inference.chat_completion(model=MODEL, messages=LONG, stream=True)
            asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.2)
            print("leaving")
        asyncio.run(main())
    """,
    # A loop closed by hand (no asyncio.run) while a stream is open, then a plain exit.
    "loop_closed": """
        loop = asyncio.new_event_loop()
        stack = LlamaStack()
        stream = stack.inference.chat_completion(model=MODEL, messages=LONG, stream=True)
        loop.run_until_complete(stream.__anext__())
        loop.close()
        print("loop closed")
    """,
}

# Stopped with SIGINT once the answer has started; the program catches KeyboardInterrupt.
CTRL_C = """
    async def main():
        stack = LlamaStack()
        async for c in stack.inference.chat_completion(model=MODEL, messages=LONG, stream=True):
            print("started", flush=True)
            print(c.event.delta, end="", file=sys.stderr)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted")
"""


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(PRELUDE + textwrap.dedent(body))
    return path


def _check(name: str, proc_rc: int, stderr: str, expected: List[int]) -> None:
    assert "Fatal Python error" not in stderr, f"{name}: {stderr[-2000:]}"
    assert proc_rc in expected, f"{name}: exit status {proc_rc}\n{stderr[-2000:]}"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_exits_cleanly(name: str, home: Path, tmp_path: Path) -> None:
    script = _script(tmp_path, name, PROGRAMS[name])
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(home))
    for _ in range(RUNS):
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
        _check(name, proc.returncode, proc.stderr, [0])
        assert proc.stdout.strip(), f"{name}: printed nothing\n{proc.stderr[-2000:]}"


def _interrupt(script: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "started", line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, line + out, err)


def test_ctrl_c_during_a_call_exits_cleanly(home: Path, tmp_path: Path) -> None:
    script = _script(tmp_path, "ctrl_c", CTRL_C)
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(home))
    for _ in range(max(RUNS // 2, 1)):
        proc = _interrupt(script, env)
        _check("ctrl_c", proc.returncode, proc.stderr, [0])
        assert "interrupted" in proc.stdout


def test_uncaught_ctrl_c_ends_as_python_does(home: Path, tmp_path: Path) -> None:
    """Without a handler, Python ends by SIGINT itself (after printing the traceback); never a crash."""
    script = _script(tmp_path, "ctrl_c_uncaught", CTRL_C.replace("except KeyboardInterrupt:", "except ZeroDivisionError:"))
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(home))
    for _ in range(max(RUNS // 2, 1)):
        proc = _interrupt(script, env)
        _check("ctrl_c_uncaught", proc.returncode, proc.stderr, [-signal.SIGINT, 128 + signal.SIGINT])
        assert "KeyboardInterrupt" in proc.stderr

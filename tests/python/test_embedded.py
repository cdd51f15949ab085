"""The `embedded` provider on the built-in default run config: chat, completion and embeddings on
the CPU with the real models, once through the in-process `LlamaStack` and once through the
official client against `llama stack run`.

The models are fetched once with `llama model download` into a cache shared by test runs
(`$LSRS_MODEL_CACHE`, default `~/.cache/lsrs/models`, laid out like a config dir); each test's
own config dir links to them, so nothing is downloaded twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest
from llama_stack_client import APIStatusError, LlamaStackClient

from conftest import free_port, stop, wait_http
from llama_stack.apis.inference import ChatCompletionResponseEventType
from llama_stack.apis.models import ModelDefWithProvider
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import SamplingParams, StopReason, UserMessage

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"
GREEDY = SamplingParams(strategy="greedy", max_tokens=16)


def _cache_root() -> Path:
    return Path(os.environ.get("LSRS_MODEL_CACHE") or Path.home() / ".cache" / "lsrs" / "models")


def _llama(env: Dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llama_stack.cli.llama", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def cached_models() -> Dict[str, Path]:
    """Model id -> its folder in the shared cache, fetched with `llama model download`."""
    root = _cache_root()
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(root))
    found = {}
    for model_id in (CHAT_MODEL, EMBED_MODEL):
        proc = _llama(env, "model", "download", "-m", model_id)
        assert proc.returncode == 0, proc.stderr
        path = Path(proc.stdout.strip().splitlines()[-1])
        assert path.exists() and model_id in str(path)
        found[model_id] = root / "checkpoints" / model_id
    return found


@pytest.fixture
def home(tmp_path: Path, cached_models: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh config dir whose checkpoints are links to the shared cache."""
    d = tmp_path / "llama-home"
    (d / "checkpoints").mkdir(parents=True)
    for model_id, folder in cached_models.items():
        (d / "checkpoints" / model_id).symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("LLAMA_STACK_CONFIG_DIR", str(d))
    return d


def test_download_is_idempotent_and_refuses_unknown_ids(cached_models: Dict[str, Path]) -> None:
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(_cache_root()))
    started = time.monotonic()
    proc = _llama(env, "model", "download", "-m", CHAT_MODEL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "downloading" not in proc.stderr and time.monotonic() - started < 30

    proc = _llama(env, "model", "download", "-m", "Llama3.1-8B-Instruct", timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Llama3.1-8B-Instruct" in proc.stderr


async def test_inprocess_default_config_runs_offline(home: Path) -> None:
    async with LlamaStack() as stack:
        models = {m.identifier: m for m in await stack.models.list_models()}
        assert models[CHAT_MODEL].provider_id == "embedded"
        assert models[CHAT_MODEL].llama_model == CHAT_MODEL
        assert models[EMBED_MODEL].metadata == {"embedding_dimension": 384}

        messages = [UserMessage(content="Name a fruit.")]
        a = await stack.inference.chat_completion(model=CHAT_MODEL, messages=messages, sampling_params=GREEDY)
        b = await stack.inference.chat_completion(model=CHAT_MODEL, messages=messages, sampling_params=GREEDY)
        assert a.completion_message.content.strip()
        assert a.completion_message.content == b.completion_message.content
        assert a.completion_message.stop_reason in (StopReason.end_of_turn, StopReason.out_of_tokens)

        chunks = [
            c
            async for c in stack.inference.chat_completion(
                model=CHAT_MODEL, messages=messages, sampling_params=GREEDY, stream=True
            )
        ]
        kinds = [c.event.event_type for c in chunks]
        assert kinds[0] == ChatCompletionResponseEventType.start
        assert kinds[-1] == ChatCompletionResponseEventType.complete
        assert set(kinds[1:-1]) == {ChatCompletionResponseEventType.progress}
        assert "".join(c.event.delta for c in chunks) == a.completion_message.content

        r = await stack.inference.completion(
            model=CHAT_MODEL, content="The sky is", sampling_params=SamplingParams(max_tokens=3)
        )
        assert r.completion_message.stop_reason == StopReason.out_of_tokens

        e = await stack.inference.embeddings(model=EMBED_MODEL, contents=["a cat", "a dog"])
        assert [len(v) for v in e.embeddings] == [384, 384]
        assert abs(sum(x * x for x in e.embeddings[0]) - 1.0) < 1e-3

        await stack.models.register_model(
            model=ModelDefWithProvider(
                identifier="Llama3.1-8B-Instruct", llama_model=CHAT_MODEL, provider_id="embedded", metadata={}
            )
        )
        r = await stack.inference.chat_completion(
            model="Llama3.1-8B-Instruct", messages=messages, sampling_params=GREEDY
        )
        assert r.completion_message.content == a.completion_message.content
        with pytest.raises(ValueError, match=CHAT_MODEL):
            await stack.models.register_model(
                model=ModelDefWithProvider(
                    identifier="other", llama_model="Llama3.2-3B-Instruct", provider_id="embedded", metadata={}
                )
            )


@pytest.fixture
def default_server(home: Path) -> Iterator[str]:
    """`llama stack run` with no config: the built-in default."""
    port = free_port()
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_stack", "stack", "run", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc, timeout=60)
        yield url
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_client_against_llama_stack_run(default_server: str) -> None:
    client = LlamaStackClient(base_url=default_server)
    ids = {m.identifier: m.provider_id for m in client.models.list()}
    assert ids[CHAT_MODEL] == "embedded" and ids[EMBED_MODEL] == "embedded"

    messages = [{"role": "user", "content": "Say hi."}]
    greedy = {"strategy": "greedy", "max_tokens": 12}
    r = client.inference.chat_completion(model=CHAT_MODEL, messages=messages, sampling_params=greedy)
    assert r.completion_message.content.strip()
    assert r.completion_message.stop_reason in ("end_of_turn", "out_of_tokens")

    events = list(
        client.inference.chat_completion(model=CHAT_MODEL, messages=messages, sampling_params=greedy, stream=True)
    )
    assert events[0].event.event_type == "start" and events[-1].event.event_type == "complete"
    assert "".join(e.event.delta for e in events) == r.completion_message.content

    c = client.inference.completion(model=CHAT_MODEL, content="Once upon a time", sampling_params={"max_tokens": 4})
    assert c.completion_message.stop_reason == "out_of_tokens"

    e = client.inference.embeddings.create(model=EMBED_MODEL, contents=["hello"])
    assert len(e.embeddings) == 1 and len(e.embeddings[0]) == 384

    client.models.register(
        model={"identifier": "Llama3.1-8B-Instruct", "llama_model": CHAT_MODEL, "provider_id": "embedded", "metadata": {}}
    )
    r2 = client.inference.chat_completion(model="Llama3.1-8B-Instruct", messages=messages, sampling_params=greedy)
    assert r2.completion_message.content == r.completion_message.content

    with pytest.raises(APIStatusError) as err:
        client.models.register(
            model={"identifier": "x", "llama_model": "Llama3.2-3B-Instruct", "provider_id": "embedded", "metadata": {}}
        )
    assert err.value.status_code == 400 and CHAT_MODEL in err.value.response.text
    with pytest.raises(APIStatusError) as err:
        client.inference.chat_completion(
            model=CHAT_MODEL, messages=messages, sampling_params={"strategy": "top_p", "temperature": -1}
        )
    assert err.value.status_code == 400 and "temperature" in err.value.response.text


def test_openai_client_gets_logprobs_and_stops(default_server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=default_server + "/v1", api_key="not-needed", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "Name three colours."}]
    r = client.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=6, temperature=0,
                                       logprobs=True, top_logprobs=3)
    scored = r.choices[0].logprobs.content
    assert scored and all(1 <= len(t.top_logprobs) <= 3 and t.top_logprobs[0].token == t.token for t in scored)
    assert all(t.logprob <= 0.0 for t in scored)
    # Greedy: the chosen tokens are the likeliest, and they spell the answer.
    assert all(t.logprob == max(c.logprob for c in t.top_logprobs) for t in scored)
    assert "".join(t.token for t in scored) == r.choices[0].message.content

    c = client.completions.create(model=CHAT_MODEL, prompt="1, 2, 3, 4,", max_tokens=4, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    assert "".join(lp.tokens) == c.choices[0].text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert len(lp.top_logprobs) == len(lp.tokens) == len(lp.token_logprobs)

    # A stop sequence ends the generation there.
    cut = client.completions.create(model=CHAT_MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[","])
    assert "," not in cut.choices[0].text and cut.choices[0].finish_reason == "stop"

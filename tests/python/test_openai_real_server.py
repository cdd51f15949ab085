"""`remote::openai` against a real OpenAI-compatible server: llama.cpp's own, as packaged by
llama-cpp-python (`python -m llama_cpp.server`), serving the same SmolLM2 GGUF the embedded
provider runs: model listing, chat (whole and streamed), completion (whole, streamed, with
logprobs).

`scripts/test.sh` installs `llama-cpp-python[server]` and sets LSRS_REQUIRE_LLAMA_CPP=1, so there
a missing server is a failure; elsewhere the module is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

from conftest import free_port, stop, wait_http
from test_embedded import CHAT_MODEL, cached_models  # noqa: F401  (a fixture, used by name)
from llama_stack.apis.inference import ChatCompletionResponseEventType, LogProbConfig
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import SamplingParams, StopReason, UserMessage

if os.environ.get("LSRS_REQUIRE_LLAMA_CPP") != "1":
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")

ALIAS = "smollm2-gguf"
GREEDY = SamplingParams(strategy="greedy", max_tokens=12)


@pytest.fixture(scope="module")
def llama_cpp_server(cached_models: Dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    gguf = next(cached_models[CHAT_MODEL].glob("*.gguf"))
    port = free_port()
    # llama.cpp logs a lot; into a file, so a full pipe never stalls the server.
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS,
             "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(url + "/v1/models", proc, timeout=120)
        except (RuntimeError, TimeoutError) as e:
            raise RuntimeError(f"{e}\n--- llama.cpp server log ---\n{log.read_text()[-4000:]}") from e
        yield url
    finally:
        stop(proc)


def config(provider_type: str, provider_config: dict, state_dir: Path) -> dict:
    return {
        "version": "2",
        "image_name": "real-openai",
        "apis": ["inference"],
        "providers": {"inference": [{"provider_id": "llm", "provider_type": provider_type, "config": provider_config}]},
        "metadata_store": {"type": "sqlite", "db_path": str(state_dir / "registry.db")},
    }


async def test_listing_chat_and_streaming(llama_cpp_server: str, state_dir: Path) -> None:
    async with LlamaStack(config("remote::openai", {"url": llama_cpp_server + "/v1"}, state_dir)) as stack:
        models = {m.identifier: m for m in await stack.models.list_models()}
        assert ALIAS in models and models[ALIAS].provider_id == "llm"

        r = await stack.inference.chat_completion(
            model=ALIAS, messages=[UserMessage(content="Name a colour.")], sampling_params=GREEDY
        )
        assert r.completion_message.content.strip()
        assert r.completion_message.stop_reason in (StopReason.end_of_turn, StopReason.out_of_tokens)

        events = [c.event async for c in stack.inference.chat_completion(
            model=ALIAS, messages=[UserMessage(content="Name a colour.")], sampling_params=GREEDY, stream=True
        )]
        kinds = [e.event_type for e in events]
        assert kinds[0] == ChatCompletionResponseEventType.start
        assert kinds[-1] == ChatCompletionResponseEventType.complete
        assert ChatCompletionResponseEventType.progress in kinds
        streamed = "".join(e.delta for e in events if isinstance(e.delta, str))
        # Not compared with the whole answer: the server reuses its cache between requests, and
        # near-ties of this small quantised model then go either way.
        assert streamed.strip()
        assert events[-1].stop_reason in (StopReason.end_of_turn, StopReason.out_of_tokens)


async def test_completion_with_logprobs(llama_cpp_server: str, state_dir: Path) -> None:
    prompt = "The capital of France is"
    async with LlamaStack(config("remote::openai", {"url": llama_cpp_server + "/v1"}, state_dir)) as stack:
        remote = await stack.inference.completion(model=ALIAS, content=prompt, sampling_params=GREEDY)
        scored = await stack.inference.completion(
            model=ALIAS, content=prompt, sampling_params=GREEDY, logprobs=LogProbConfig(top_k=2)
        )
        chunks = [c async for c in stack.inference.completion(
            model=ALIAS, content=prompt, sampling_params=GREEDY, stream=True
        )]
    assert remote.completion_message.content.strip()
    assert remote.completion_message.stop_reason in (StopReason.end_of_turn, StopReason.out_of_tokens)
    assert scored.logprobs and all(1 <= len(t.logprobs_by_token) <= 2 for t in scored.logprobs)
    assert all(lp <= 0.0 for t in scored.logprobs for lp in t.logprobs_by_token.values())
    assert "".join(c.delta for c in chunks).strip()
    assert chunks[-1].stop_reason is not None

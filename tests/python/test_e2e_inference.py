"""Inference, routing and registries end to end, through `remote::ollama` against a fake Ollama.

Each scenario runs twice: through the official `llama_stack_client` 0.0.41 SDK against a real
`llama stack run` server, and through the in-process `LlamaStack` API. Both must see the same
behaviour, since both go through the same operation table in the core.
"""

from __future__ import annotations

import signal

import httpx
import pytest
from llama_stack_client import APIStatusError, AsyncLlamaStackClient, LlamaStackClient

from conftest import run_config
from llama_stack.apis.inference import (
    ChatCompletionResponse,
    ChatCompletionResponseEventType,
    ChatCompletionResponseStreamChunk,
    CompletionResponse,
    EmbeddingsResponse,
)
from llama_stack.apis.models import ModelDefWithProvider
from llama_stack.distribution.datatypes import StackRunConfig
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import StopReason, UserMessage

LLAMA_TAG = "llama3.1:8b-instruct-fp16"


@pytest.fixture
def two_backends(fake_ollama, state_dir):
    """Two Ollama providers serving different models, so routing is observable: a request
    sent to the wrong backend fails with its 404."""
    a = fake_ollama(models=[LLAMA_TAG, "smol:latest"])
    b = fake_ollama(models=["qwen:0.5b"])
    return run_config(state_dir, {"ollama-a": a, "ollama-b": b})


# ---------------------------------------------------------------- in process


async def test_inprocess_models_and_routing(two_backends):
    stack = await LlamaStack.create(StackRunConfig(**two_backends))
    models = await stack.models.list_models()
    assert all(isinstance(m, ModelDefWithProvider) for m in models)
    by_id = {m.identifier: m for m in models}
    assert by_id["Llama3.1-8B-Instruct"].provider_id == "ollama-a"
    assert by_id["Llama3.1-8B-Instruct"].llama_model == "Llama3.1-8B-Instruct"
    assert by_id["qwen:0.5b"].provider_id == "ollama-b"
    assert await stack.models.get_model(identifier="nope") is None

    for model in ("Llama3.1-8B-Instruct", "qwen:0.5b", "smol:latest"):
        r = await stack.inference.chat_completion(model=model, messages=[UserMessage(content="hello")])
        assert isinstance(r, ChatCompletionResponse)
        assert r.completion_message.content.startswith(" tok0")
        assert r.completion_message.stop_reason == StopReason.end_of_turn
    await stack.close()


async def test_inprocess_streaming_and_other_calls(two_backends):
    async with LlamaStack(two_backends) as stack:
        chunks = [
            c
            async for c in stack.inference.chat_completion(
                model="Llama3.1-8B-Instruct", messages=[UserMessage(content="hi")], stream=True
            )
        ]
        assert all(isinstance(c, ChatCompletionResponseStreamChunk) for c in chunks)
        kinds = [c.event.event_type for c in chunks]
        assert kinds[0] == ChatCompletionResponseEventType.start
        assert kinds[-1] == ChatCompletionResponseEventType.complete
        assert set(kinds[1:-1]) == {ChatCompletionResponseEventType.progress}
        assert chunks[-1].event.stop_reason == StopReason.end_of_turn
        text = "".join(c.event.delta for c in chunks if isinstance(c.event.delta, str))
        assert text.startswith(" tok0 tok1")

        r = await stack.inference.completion(model="qwen:0.5b", content="once upon")
        assert isinstance(r, CompletionResponse)
        assert r.completion_message.content.startswith(" tok0")

        e = await stack.inference.embeddings(model="qwen:0.5b", contents=["a", "b"])
        assert isinstance(e, EmbeddingsResponse)
        assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 384

        with pytest.raises(ValueError, match="model `ghost` not registered.*Llama3.1-8B-Instruct"):
            await stack.inference.chat_completion(model="ghost", messages=[UserMessage(content="x")])
        # A streamed request with a bad model fails before the first chunk, as an exception.
        with pytest.raises(ValueError, match="ghost"):
            async for _ in stack.inference.chat_completion(model="ghost", messages=[], stream=True):
                pass
        with pytest.raises(NotImplementedError, match="agents"):
            await stack.agents.delete_agents(agent_id="a")

        providers = await stack.inspect.list_providers()
        assert [p.provider_id for p in providers["inference"]] == ["ollama-a", "ollama-b"]
        assert (await stack.inspect.health()).status == "OK"


async def test_inprocess_register_refusal_and_persistence(two_backends):
    stack = await LlamaStack.create(two_backends)
    # The provider refuses a model its backend does not have, naming it.
    with pytest.raises(ValueError, match="missing-model"):
        await stack.models.register_model(
            model=ModelDefWithProvider(identifier="x", llama_model="missing-model", provider_id="ollama-b")
        )
    with pytest.raises(ValueError, match="provider `nowhere` not found"):
        await stack.models.register_model(
            model=ModelDefWithProvider(identifier="x", llama_model="qwen:0.5b", provider_id="nowhere")
        )
    # Several providers: provider_id cannot be left out.
    with pytest.raises(ValueError, match="provider_id"):
        await stack.models.register_model(model=ModelDefWithProvider(identifier="x", llama_model="qwen:0.5b"))
    await stack.models.register_model(
        model=ModelDefWithProvider(
            identifier="my-alias", llama_model="smol:latest", provider_id="ollama-a", metadata={}
        )
    )
    r = await stack.inference.chat_completion(model="my-alias", messages=[UserMessage(content="hi")])
    assert r.completion_message.content
    await stack.close()

    # A new stack on the same store sees the registration.
    again = await LlamaStack.create(two_backends)
    got = await again.models.get_model(identifier="my-alias")
    assert got is not None and got.provider_id == "ollama-a"
    await again.close()


async def test_inprocess_works_inside_a_running_loop(two_backends):
    # Constructing and calling from within a coroutine (as in Jupyter) must not block or nest loops.
    stack = LlamaStack(two_backends)
    assert (await stack.inspect.health()).status == "OK"


def test_inprocess_bad_config_names_the_field(state_dir):
    import asyncio

    cfg = run_config(state_dir, {"o": "http://127.0.0.1:9"})
    cfg["providers"]["inference"][0]["config"]["port"] = "eleven"
    with pytest.raises(ValueError, match=r"providers\.inference\[0\]\.config\.port"):
        asyncio.run(LlamaStack.create(cfg))


# ---------------------------------------------------------------- over HTTP, official client


def test_client_models_chat_stream_and_errors(two_backends, server):
    srv = server(two_backends)
    client = LlamaStackClient(base_url=srv.url)

    models = client.models.list()
    ids = {m.identifier: m.provider_id for m in models}
    assert ids["Llama3.1-8B-Instruct"] == "ollama-a" and ids["qwen:0.5b"] == "ollama-b"
    assert client.models.retrieve(identifier="qwen:0.5b").provider_id == "ollama-b"

    r = client.inference.chat_completion(
        model="Llama3.1-8B-Instruct", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.completion_message.content.startswith(" tok0")
    assert r.completion_message.stop_reason == "end_of_turn"

    events = list(
        client.inference.chat_completion(
            model="qwen:0.5b", messages=[{"role": "user", "content": "hello"}], stream=True
        )
    )
    assert events[0].event.event_type == "start"
    assert events[-1].event.event_type == "complete"
    assert events[-1].event.stop_reason == "end_of_turn"

    with pytest.raises(APIStatusError) as err:
        client.inference.chat_completion(model="ghost", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 400
    assert "ghost" in err.value.response.text and "qwen:0.5b" in err.value.response.text

    # Validation errors name the field, in the shape upstream's server used.
    r = httpx.post(srv.url + "/inference/chat_completion", json={"model": "qwen:0.5b"})
    assert r.status_code == 400
    assert r.json()["error"]["detail"]["errors"][0]["loc"] == ["body", "messages"]

    # A streamed request with a bad model is an ordinary JSON 4xx, not an event stream.
    r = httpx.post(
        srv.url + "/inference/chat_completion",
        json={"model": "ghost", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")

    # Raw SSE framing: `data: <json>` lines separated by blank lines, no terminator.
    with httpx.stream(
        "POST",
        srv.url + "/inference/chat_completion",
        json={"model": "qwen:0.5b", "messages": [{"role": "user", "content": "x"}], "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: {") for f in frames)

    routes = client.routes.list()
    assert "inference" in routes
    assert client.providers.list()["inference"][0].provider_id == "ollama-a"
    assert srv.stop() == 0


async def test_async_client_completion_embeddings(two_backends, server):
    srv = server(two_backends)
    client = AsyncLlamaStackClient(base_url=srv.url)
    r = await client.inference.completion(model="qwen:0.5b", content="once upon")
    assert r.completion_message.content.startswith(" tok0")
    e = await client.inference.embeddings.create(model="Llama3.1-8B-Instruct", contents=["a"])
    assert len(e.embeddings) == 1


def test_client_register_survives_restart(two_backends, server):
    srv = server(two_backends)
    client = LlamaStackClient(base_url=srv.url)
    client.models.register(
        model={"identifier": "alias-1", "llama_model": "smol:latest", "provider_id": "ollama-a", "metadata": {}}
    )
    with pytest.raises(APIStatusError) as err:
        client.models.register(
            model={"identifier": "x", "llama_model": "qwen:0.5b", "provider_id": "nowhere", "metadata": {}}
        )
    assert err.value.status_code == 400 and "nowhere" in err.value.response.text
    assert srv.stop(signal.SIGTERM) == 0

    again = server(two_backends)
    client = LlamaStackClient(base_url=again.url)
    assert "alias-1" in {m.identifier for m in client.models.list()}
    r = client.inference.chat_completion(model="alias-1", messages=[{"role": "user", "content": "hi"}])
    assert r.completion_message.content


def test_two_servers_share_one_store(two_backends, server):
    """Two server processes on one sqlite store: a registration on one is served by the other."""
    first = server(two_backends)
    second = server(two_backends)
    LlamaStackClient(base_url=first.url).models.register(
        model={"identifier": "shared", "llama_model": "qwen:0.5b", "provider_id": "ollama-b", "metadata": {}}
    )
    other = LlamaStackClient(base_url=second.url)
    assert other.models.retrieve(identifier="shared").provider_id == "ollama-b"
    r = other.inference.chat_completion(model="shared", messages=[{"role": "user", "content": "hi"}])
    assert r.completion_message.content


def test_backend_down_is_a_clear_error(state_dir, server):
    cfg = run_config(state_dir, {"down": "http://127.0.0.1:9"})
    cfg["models"] = []
    srv = server(cfg)
    # The stack starts without its backend and says so per request.
    r = httpx.post(
        srv.url + "/inference/chat_completion",
        json={"model": "anything", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 400 and "anything" in r.json()["detail"]

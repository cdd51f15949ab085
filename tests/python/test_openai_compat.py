"""OpenAI compatibility, both ways.

* The server's `/v1/*` routes, used by the official `openai` package against `llama stack run`
  with a `remote::ollama` provider in front of the fake Ollama.
* The `remote::openai` provider, against the fake backend's OpenAI routes and against another
  `llama stack run` serving `/v1` (stack B -> stack A -> fake Ollama), plus its failures: a
  server that is down, one that never answers, and one that refuses the model.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Iterator, List

import httpx
import openai
import pytest
from llama_stack_client import APIStatusError, LlamaStackClient
from openai import OpenAI

from conftest import free_port, run_config
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import StopReason, UserMessage

LLAMA_TAG = "llama3.1:8b-instruct-fp16"
TOOLS_MODEL = "fake-tools:latest"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
STACK_WEATHER_TOOL = {"tool_name": "get_weather", "description": "Current weather",
                      "parameters": {"city": {"param_type": "str", "required": True}}}


def openai_config(state_dir, providers: dict, db: str) -> dict:
    """A run config with one `remote::openai` provider per entry (id -> provider config)."""
    cfg = run_config(state_dir, {})
    cfg["providers"]["inference"] = [
        {"provider_id": pid, "provider_type": "remote::openai", "config": conf} for pid, conf in providers.items()
    ]
    cfg["metadata_store"]["db_path"] = str(state_dir / db)
    return cfg


def oai(url: str) -> OpenAI:
    # No retries: a failure must show at once, and a retry would hide how long it took.
    return OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=30)


@pytest.fixture
def stack_a(fake_ollama, state_dir, server):
    """`llama stack run` with `remote::ollama` in front of the fake, serving `/v1`."""
    url = fake_ollama(models=[LLAMA_TAG, "qwen:0.5b", TOOLS_MODEL])
    return server(run_config(state_dir, {"ollama": url}))


# ---------------------------------------------------------------- our /v1 routes, openai client


def test_models_and_chat(stack_a):
    client = oai(stack_a.url)
    models = {m.id: m for m in client.models.list()}
    assert {"Llama3.1-8B-Instruct", "qwen:0.5b", TOOLS_MODEL} <= set(models)
    assert models["qwen:0.5b"].owned_by == "ollama"

    r = client.chat.completions.create(
        model="Llama3.1-8B-Instruct",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        max_tokens=3,
        temperature=0.5,
    )
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.model == "Llama3.1-8B-Instruct" and r.created > 0
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == " tok0 tok1 tok2"
    assert r.choices[0].finish_reason == "stop"


def test_streamed_chat_and_raw_framing(stack_a):
    client = oai(stack_a.url)
    chunks = list(
        client.chat.completions.create(
            model="qwen:0.5b", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=4
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == " tok0 tok1 tok2 tok3"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])

    # The stream is `data: <json>` events and ends with `data: [DONE]`.
    with httpx.stream(
        "POST",
        stack_a.url + "/v1/chat/completions",
        json={"model": "qwen:0.5b", "messages": [{"role": "user", "content": "x"}], "stream": True},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert all(f.startswith("data: {") for f in frames[:-1])

    # The Llama Stack route keeps its own framing: no terminator.
    with httpx.stream(
        "POST",
        stack_a.url + "/inference/chat_completion",
        json={"model": "qwen:0.5b", "messages": [{"role": "user", "content": "x"}], "stream": True},
    ) as r:
        raw = r.read().decode()
    assert "[DONE]" not in raw and raw.startswith("data: {")


def test_tool_calls(stack_a):
    client = oai(stack_a.url)
    messages: List[dict] = [{"role": "user", "content": "weather in Rome?"}]
    r = client.chat.completions.create(model=TOOLS_MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake"}
    assert call.id

    # Streamed, the call arrives whole in one delta.
    chunks = list(client.chat.completions.create(model=TOOLS_MODEL, messages=messages, tools=[WEATHER_TOOL], stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "fake"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The tool's result goes back with the call; the model then answers in text.
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    r = client.chat.completions.create(model=TOOLS_MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content.startswith(" tok0")

    # tool_choice "none" sends no tools, so no call.
    r = client.chat.completions.create(model=TOOLS_MODEL, messages=messages[:1], tools=[WEATHER_TOOL], tool_choice="none")
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"


def test_completions_and_embeddings(stack_a):
    client = oai(stack_a.url)
    r = client.completions.create(model="qwen:0.5b", prompt="once upon", max_tokens=2)
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.choices[0].text == " tok0 tok1" and r.choices[0].finish_reason == "stop"
    chunks = list(client.completions.create(model="qwen:0.5b", prompt="once upon", max_tokens=3, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == " tok0 tok1 tok2"
    assert chunks[-1].choices[0].finish_reason == "stop"

    # The client asks for base64 unless told otherwise and decodes it.
    e = client.embeddings.create(model="Llama3.1-8B-Instruct", input=["a", "b"])
    assert [d.index for d in e.data] == [0, 1]
    assert len(e.data[0].embedding) == 384 and e.data[0].embedding[1] == pytest.approx(0.01)
    floats = client.embeddings.create(model="qwen:0.5b", input="a", encoding_format="float")
    assert floats.data[0].embedding[:3] == pytest.approx([0.0, 0.01, 0.02])


def test_errors_in_openai_shape(stack_a):
    client = oai(stack_a.url)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="ghost", messages=[{"role": "user", "content": "x"}])
    body = err.value.body
    assert err.value.status_code == 400
    assert body["code"] == "model_not_found" and body["param"] == "model" and body["type"] == "invalid_request_error"
    assert "ghost" in body["message"] and "qwen:0.5b" in body["message"]

    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="ghost", input="x")
    assert err.value.body["code"] == "model_not_found"

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="qwen:0.5b", messages=[{"role": "user", "content": "x"}], n=2)
    assert err.value.body["param"] == "n"

    r = httpx.post(stack_a.url + "/v1/chat/completions", json={"model": "qwen:0.5b"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages" and r.json()["error"]["code"] == "missing"

    # A streamed request that fails before its first event is a plain JSON error.
    r = httpx.post(
        stack_a.url + "/v1/chat/completions",
        json={"model": "ghost", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}

    r = httpx.get(stack_a.url + "/v1/chat/completions")
    assert r.status_code == 405 and "message" in r.json()["error"]


# ---------------------------------------------------------------- remote::openai


def test_remote_openai_against_the_fake_openai_routes(fake_ollama, state_dir, server):
    url = fake_ollama(models=["gpt-fake", TOOLS_MODEL])
    srv = server(openai_config(state_dir, {"oai": {"url": url + "/v1", "timeout": 10}}, "b.db"))
    client = LlamaStackClient(base_url=srv.url)
    ids = {m.identifier: m.provider_id for m in client.models.list()}
    assert ids == {"gpt-fake": "oai", TOOLS_MODEL: "oai"}

    r = client.inference.chat_completion(
        model="gpt-fake",
        messages=[{"role": "user", "content": "hello"}],
        sampling_params={"max_tokens": 2},
    )
    assert r.completion_message.content == " tok0 tok1"
    assert r.completion_message.stop_reason == "end_of_turn"

    events = list(
        client.inference.chat_completion(model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert [events[0].event.event_type, events[-1].event.event_type] == ["start", "complete"]
    assert "".join(e.event.delta for e in events if isinstance(e.event.delta, str)).startswith(" tok0 tok1")

    r = client.inference.chat_completion(
        model=TOOLS_MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[STACK_WEATHER_TOOL]
    )
    call = r.completion_message.tool_calls[0]
    assert (call.tool_name, call.arguments, call.call_id) == ("get_weather", {"city": "fake"}, "call_fake0")
    assert r.completion_message.stop_reason == "end_of_message"

    # Streamed, the call's arguments come in pieces and leave as one parsed call.
    events = list(
        client.inference.chat_completion(
            model=TOOLS_MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[STACK_WEATHER_TOOL], stream=True
        )
    )
    tool_events = [e for e in events if not isinstance(e.event.delta, str)]
    assert len(tool_events) == 1 and tool_events[0].event.delta.parse_status == "success"
    assert tool_events[0].event.delta.content.arguments == {"city": "fake"}
    assert events[-1].event.stop_reason == "end_of_message"

    r = client.inference.completion(model="gpt-fake", content="once", sampling_params={"max_tokens": 3})
    assert r.completion_message.content == " tok0 tok1 tok2"
    e = client.inference.embeddings.create(model="gpt-fake", contents=["a", "b"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 384


async def test_remote_openai_in_process(fake_ollama, state_dir):
    url = fake_ollama(models=["gpt-fake"])
    async with LlamaStack(openai_config(state_dir, {"oai": {"url": url + "/v1"}}, "c.db")) as stack:
        r = await stack.inference.chat_completion(model="gpt-fake", messages=[UserMessage(content="hi")])
        assert r.completion_message.content.startswith(" tok0")
        assert r.completion_message.stop_reason == StopReason.end_of_turn
        chunks = [c async for c in stack.inference.chat_completion(
            model="gpt-fake", messages=[UserMessage(content="hi")], stream=True)]
        assert chunks[-1].event.stop_reason == StopReason.end_of_turn


def test_chained_stacks(stack_a, state_dir, server):
    """Stack B serves stack A's models through `remote::openai` pointed at A's `/v1`."""
    b = server(openai_config(state_dir, {"stack-a": {"url": stack_a.url + "/v1", "api_key": "k"}}, "b.db"))
    client = LlamaStackClient(base_url=b.url)
    ids = {m.identifier: m.provider_id for m in client.models.list()}
    assert ids["Llama3.1-8B-Instruct"] == "stack-a" and ids["qwen:0.5b"] == "stack-a"

    r = client.inference.chat_completion(
        model="Llama3.1-8B-Instruct",
        messages=[{"role": "user", "content": "hello"}],
        sampling_params={"strategy": "top_k", "top_k": 5, "max_tokens": 2},
    )
    assert r.completion_message.content == " tok0 tok1"
    assert r.completion_message.stop_reason == "end_of_turn"

    events = list(
        client.inference.chat_completion(
            model="qwen:0.5b", messages=[{"role": "user", "content": "hi"}], stream=True,
            sampling_params={"max_tokens": 3},
        )
    )
    assert "".join(e.event.delta for e in events if isinstance(e.event.delta, str)) == " tok0 tok1 tok2"
    assert events[-1].event.stop_reason == "end_of_turn"

    # A tool call made by A's model crosses both stacks, plain and streamed.
    r = client.inference.chat_completion(
        model=TOOLS_MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[STACK_WEATHER_TOOL]
    )
    assert r.completion_message.tool_calls[0].tool_name == "get_weather"
    assert r.completion_message.tool_calls[0].arguments == {"city": "fake"}
    assert r.completion_message.stop_reason == "end_of_message"
    events = list(
        client.inference.chat_completion(
            model=TOOLS_MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[STACK_WEATHER_TOOL], stream=True
        )
    )
    calls = [e.event.delta.content for e in events if not isinstance(e.event.delta, str)]
    assert len(calls) == 1 and calls[0].tool_name == "get_weather" and calls[0].arguments == {"city": "fake"}
    assert events[-1].event.stop_reason == "end_of_message"

    # The tool's answer goes back through both stacks.
    r = client.inference.chat_completion(
        model=TOOLS_MODEL,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "", "stop_reason": "end_of_message", "tool_calls": [
                {"call_id": calls[0].call_id, "tool_name": "get_weather", "arguments": {"city": "fake"}}]},
            {"role": "ipython", "call_id": calls[0].call_id, "tool_name": "get_weather", "content": "sunny"},
        ],
        tools=[STACK_WEATHER_TOOL],
    )
    assert r.completion_message.content.startswith(" tok0") and not r.completion_message.tool_calls

    r = client.inference.completion(model="qwen:0.5b", content="once", stream=False)
    assert r.completion_message.content.startswith(" tok0")
    # (The 0.0.41 client does not decode streamed completions; read the events directly.)
    with httpx.stream(
        "POST",
        b.url + "/inference/completion",
        json={"model": "qwen:0.5b", "content": "once", "stream": True, "sampling_params": {"max_tokens": 2}},
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    chunks = [json.loads(f[len("data: "):]) for f in frames]
    assert "".join(c["delta"] for c in chunks) == " tok0 tok1" and chunks[-1]["stop_reason"] == "end_of_turn"
    assert len(client.inference.embeddings.create(model="qwen:0.5b", contents=["a"]).embeddings[0]) == 384

    # B's own /v1 routes, two stacks deep, for the openai client.
    o = oai(b.url)
    assert o.chat.completions.create(
        model="qwen:0.5b", messages=[{"role": "user", "content": "x"}], max_tokens=2
    ).choices[0].message.content == " tok0 tok1"

    # A refusal from A comes back naming B's provider.
    with pytest.raises(APIStatusError) as err:
        client.inference.chat_completion(
            model="qwen:0.5b", messages=[{"role": "user", "content": "x"}],
            sampling_params={"strategy": "top_p", "top_p": 3.0},
        )
    assert err.value.status_code == 400
    assert "stack-a" in err.value.response.text and "top_p" in err.value.response.text


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: List[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    stop.set()
    t.join()
    for c in held:
        c.close()
    sock.close()


def test_remote_openai_failures(fake_ollama, silent_server, state_dir, server):
    down = f"http://127.0.0.1:{free_port()}/v1"
    backend = fake_ollama(models=["gpt-fake"])
    srv = server(openai_config(state_dir, {
        "down": {"url": down, "models": ["down-model"]},
        "slow": {"url": silent_server, "models": ["slow-model"], "timeout": 1},
        "picky": {"url": backend + "/v1", "models": ["absent-model"]},
    }, "d.db"))
    chat = {"messages": [{"role": "user", "content": "x"}]}

    started = time.monotonic()
    r = httpx.post(srv.url + "/inference/chat_completion", json=dict(chat, model="down-model"), timeout=30)
    assert r.status_code == 503 and "`down`" in r.json()["detail"]
    assert time.monotonic() - started < 5

    started = time.monotonic()
    r = httpx.post(srv.url + "/inference/chat_completion", json=dict(chat, model="slow-model", stream=True), timeout=30)
    assert r.status_code == 504 and "`slow`" in r.json()["detail"]
    assert time.monotonic() - started < 5

    r = httpx.post(srv.url + "/inference/chat_completion", json=dict(chat, model="absent-model"), timeout=30)
    assert r.status_code == 400
    assert "`picky`" in r.json()["detail"] and "absent-model" in r.json()["detail"]

    # The same failures through the /v1 routes, in OpenAI's shape.
    client = oai(srv.url)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="down-model", **chat)
    assert err.value.status_code == 503 and err.value.body["code"] == "service_unavailable"
    assert "down" in err.value.body["message"]
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="slow-model", **chat)
    assert err.value.status_code == 504 and err.value.body["code"] == "timeout"

    # The stack keeps serving its other models.
    assert httpx.get(srv.url + "/health").status_code == 200


@pytest.fixture
def cut_off_server() -> Iterator[str]:
    """A server that starts a streamed answer, sends one event, then drops the connection."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    event = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
                    body = b"data: " + json.dumps(event).encode() + b"\n\n"
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                        + b"%x\r\n" % len(body) + body + b"\r\n"
                    )
                except OSError:
                    pass
                # Closing here, with no last chunk, cuts the stream off mid-answer.

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    stop.set()
    t.join()
    sock.close()


async def test_a_stream_cut_off_mid_answer_fails_cleanly(cut_off_server, state_dir, server):
    cfg = openai_config(state_dir, {"flaky": {"url": cut_off_server, "models": ["flaky-model"]}}, "cut.db")

    # In process: the async iterator gives what came, then raises naming the provider.
    async with LlamaStack(cfg) as stack:
        seen = []
        with pytest.raises(RuntimeError, match="flaky"):
            async for chunk in stack.inference.chat_completion(
                model="flaky-model", messages=[UserMessage(content="hi")], stream=True
            ):
                seen.append(chunk.event)
        assert seen[0].event_type.value == "start" and seen[1].delta == "Hel"
        # The stack keeps working after a failed stream.
        assert [m.identifier for m in await stack.models.list_models()] == ["flaky-model"]

    # Over HTTP: the events that came, then upstream's error event naming the provider.
    srv = server(cfg)
    with httpx.stream("POST", srv.url + "/inference/chat_completion", timeout=30, json={
        "model": "flaky-model", "messages": [{"role": "user", "content": "hi"}], "stream": True,
    }) as r:
        assert r.status_code == 200
        events = [json.loads(line[len("data: "):]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[0]["event"]["event_type"] == "start" and events[1]["event"]["delta"] == "Hel"
    assert "flaky" in events[-1]["error"]["message"]
    assert httpx.get(srv.url + "/health").status_code == 200


def test_stop_sequences_cut_every_answer(stack_a):
    client = oai(stack_a.url)
    msgs = [{"role": "user", "content": "count"}]
    r = client.chat.completions.create(model="qwen:0.5b", messages=msgs, max_tokens=6, stop=[" tok3", "zzz"])
    assert r.choices[0].message.content == " tok0 tok1 tok2"
    assert r.choices[0].finish_reason == "stop"

    # Streamed: the sequence arrives split over deltas (" tok" + "3") and is still found.
    chunks = list(client.chat.completions.create(model="qwen:0.5b", messages=msgs, max_tokens=6, stop=" tok3",
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " tok0 tok1 tok2"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    c = client.completions.create(model="qwen:0.5b", prompt="count", max_tokens=6, stop="tok1")
    assert c.choices[0].text == " tok0 "
    streamed = list(client.completions.create(model="qwen:0.5b", prompt="count", max_tokens=6, stop="tok1",
                                              stream=True))
    assert "".join(x.choices[0].text for x in streamed) == " tok0 "

    # No sequence found: the whole answer, ended as the model ended it.
    r = client.chat.completions.create(model="qwen:0.5b", messages=msgs, max_tokens=2, stop=["never"])
    plain = client.chat.completions.create(model="qwen:0.5b", messages=msgs, max_tokens=2)
    assert r.choices[0].message.content == plain.choices[0].message.content == " tok0 tok1"
    assert r.choices[0].finish_reason == plain.choices[0].finish_reason

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="qwen:0.5b", messages=msgs, stop=["a", "b", "c", "d", "e"])
    assert err.value.body["param"] == "stop"

"""Shields end to end: the `code_scanner` shield (offline) and the `llama_guard` shield on a
scripted guard model, through the official `llama_stack_client` 0.0.41 SDK against a real
`llama stack run` server, and through the in-process `LlamaStack` API.

The guard model is served by a small OpenAI-compatible server written here (the wire format of
`/v1/models` and non-streamed `/v1/chat/completions`) whose answer depends on a word in the
conversation, so every branch of the guard's verdict is reachable.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest
from llama_stack_client import APIStatusError, LlamaStackClient

from conftest import free_port
from llama_stack.apis.safety import RunShieldResponse, ViolationLevel
from llama_stack.apis.shields import ShieldDefWithProvider
from llama_stack.distribution.datatypes import StackRunConfig
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import UserMessage

GUARD = "Llama-Guard-3-8B"
INSECURE = "Here it is:\n```python\nimport pickle\nobj = pickle.loads(blob)\n```\n"

# A trigger word in the conversation -> the guard model's answer.
SCRIPT = {"WEAPON": "unsafe\nS9", "CODEABUSE": "unsafe\nS14", "GARBLE": "I am not sure."}


class GuardHandler(BaseHTTPRequestHandler):
    prompts: List[str] = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def reply(self, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.reply({"object": "list", "data": [{"id": GUARD, "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        prompt = body["messages"][-1]["content"]
        GuardHandler.prompts.append(prompt)
        conversation = prompt.split("<BEGIN CONVERSATION>")[1]
        answer = next((a for word, a in SCRIPT.items() if word in conversation), "safe")
        self.reply({
            "id": "guard-1", "object": "chat.completion", "created": 1728518400, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


@pytest.fixture
def guard_url() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), GuardHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def safety_config(state_dir, guard_url: str) -> dict:
    return {
        "version": "2",
        "image_name": "safety",
        "apis": ["inference", "safety", "telemetry"],
        "providers": {
            "inference": [{"provider_id": "guard-host", "provider_type": "remote::openai", "config": {"url": guard_url, "api_key": "k"}}],
            "safety": [
                {"provider_id": "guard", "provider_type": "meta-reference",
                 "config": {"llama_guard_shield": {"model": GUARD, "excluded_categories": ["S14"]}}},
                {"provider_id": "codescan", "provider_type": "meta-reference/codeshield", "config": {}},
            ],
            "telemetry": [{"provider_id": "console", "provider_type": "meta-reference", "config": {}}],
        },
        "metadata_store": {"type": "sqlite", "db_path": str(state_dir / "registry.db")},
    }


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_shields_over_http(server, state_dir, guard_url):
    s = server(safety_config(state_dir, guard_url))
    client = LlamaStackClient(base_url=s.url)

    shields = {sh.identifier: sh for sh in client.shields.list()}
    assert shields["llama_guard"].provider_id == "guard"
    assert shields["code_scanner"].provider_id == "codescan"
    assert shields["code_scanner"].type == "code_scanner"
    assert client.shields.retrieve(shield_type="code_scanner").provider_id == "codescan"

    r = client.safety.run_shield(shield_type="code_scanner", messages=[user(INSECURE)], params={})
    assert r.violation is not None
    assert r.violation.violation_level == "error"
    assert r.violation.user_message == "Sorry, I found security concerns in the code."
    assert r.violation.metadata["violation_type"] == "python-unsafe-deserialization"
    clean = client.safety.run_shield(shield_type="code_scanner", messages=[user("print('hello')")], params={})
    assert clean.violation is None

    assert client.safety.run_shield(shield_type="llama_guard", messages=[user("Bake bread?")], params={}).violation is None
    v = client.safety.run_shield(
        shield_type="llama_guard",
        messages=[user("hi"), {"role": "assistant", "content": "hello", "stop_reason": "end_of_turn"}, user("WEAPON plans")],
        params={},
    ).violation
    assert v.violation_level == "error" and v.metadata == {"violation_type": "S9"}
    assert v.user_message == "I can't answer that. Can I help with something else?"
    # S14 is excluded in the config: no violation, and the prompt does not list it.
    assert client.safety.run_shield(shield_type="llama_guard", messages=[user("CODEABUSE")], params={}).violation is None
    assert "S14" not in GuardHandler.prompts[-1] and "S13: Elections." in GuardHandler.prompts[-1]

    with pytest.raises(APIStatusError) as e:
        client.safety.run_shield(shield_type="llama_guard", messages=[user("GARBLE")], params={})
    assert e.value.status_code == 502 and "I am not sure." in e.value.response.text

    with pytest.raises(APIStatusError) as e:
        client.safety.run_shield(shield_type="nope", messages=[user("x")], params={})
    assert e.value.status_code == 400
    assert "`nope`" in e.value.response.text and "code_scanner" in e.value.response.text

    # Two safety providers: registering needs a provider id; with one, the shield is served.
    with pytest.raises(APIStatusError) as e:
        client.shields.register(shield={"identifier": "strict-code", "type": "code_scanner", "params": {}})
    assert e.value.status_code == 400 and "provider_id" in e.value.response.text
    with pytest.raises(APIStatusError) as e:
        client.shields.register(shield={"identifier": "x", "type": "llama_guard", "params": {}, "provider_id": "codescan"})
    assert e.value.status_code == 400 and "serves: code_scanner" in e.value.response.text
    client.shields.register(
        shield={"identifier": "strict-code", "type": "code_scanner", "params": {}, "provider_id": "codescan"}
    )
    assert "strict-code" in {sh.identifier for sh in client.shields.list()}
    r = client.safety.run_shield(shield_type="strict-code", messages=[user(INSECURE)], params={})
    assert r.violation.metadata["violation_type"] == "python-unsafe-deserialization"


def test_one_safety_provider_needs_no_provider_id(server, state_dir):
    cfg = {
        "version": "2",
        "image_name": "codescan",
        "apis": ["safety"],
        "providers": {"safety": [{"provider_id": "cs", "provider_type": "meta-reference/codeshield", "config": {}}]},
        "metadata_store": {"type": "sqlite", "db_path": str(state_dir / "registry.db")},
    }
    client = LlamaStackClient(base_url=server(cfg).url)
    client.shields.register(shield={"identifier": "mine", "type": "code_scanner", "params": {}})
    assert {(sh.identifier, sh.provider_id) for sh in client.shields.list()} == {("code_scanner", "cs"), ("mine", "cs")}
    r = client.safety.run_shield(shield_type="mine", messages=[user("```js\neval(x)\n```")], params={})
    assert r.violation.metadata["violation_type"] == "js-eval"


async def test_shields_in_process(state_dir, guard_url):
    stack = await LlamaStack.create(StackRunConfig(**safety_config(state_dir, guard_url)))
    shields = await stack.shields.list_shields()
    assert all(isinstance(sh, ShieldDefWithProvider) for sh in shields)
    assert {sh.identifier for sh in shields} == {"llama_guard", "code_scanner"}
    r = await stack.safety.run_shield(shield_type="code_scanner", messages=[UserMessage(content=INSECURE)], params={})
    assert isinstance(r, RunShieldResponse)
    assert r.violation.violation_level == ViolationLevel("error")
    r = await stack.safety.run_shield(shield_type="llama_guard", messages=[UserMessage(content="WEAPON")], params={})
    assert r.violation.metadata["violation_type"] == "S9"
    with pytest.raises(ValueError, match="nope"):
        await stack.safety.run_shield(shield_type="nope", messages=[UserMessage(content="x")], params={})
    await stack.close()

"""`remote::tgi` behind `llama stack run`, driven by the official client: the model the TGI
server reports is listed under its Llama id, chat (whole, streamed, with a tool call) goes
through TGI's generate routes with a Llama 3 prompt, and a TGI that is down neither stops the
stack from starting nor hangs a request. TGI is played by a small fake in this file that
follows its wire format (`/info`, `/generate`, `/generate_stream`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Tuple

import pytest
from llama_stack_client import APIStatusError, LlamaStackClient

from conftest import free_port, run_config

LLAMA = "Llama3.1-8B-Instruct"
REPO = "meta-llama/Meta-Llama-3.1-8B-Instruct"
USER_HEADER = "<|start_header_id|>user<|end_header_id|>\n\n"


def reply_tokens(prompt: str) -> List[Tuple[str, bool]]:
    """(text, special) of the fake's reply to the last user message of a Llama 3 prompt."""
    asked = prompt.rsplit(USER_HEADER, 1)[-1].split("<|eot_id|>", 1)[0]
    if "weather" in asked:
        parts = ["<|python_tag|>", "brave_search", ".call(query=\"", "Paris weather", "\")", "<|eom_id|>"]
        return [(p, p.startswith("<|")) for p in parts]
    words = f"You said: {asked}".split(" ")
    return [(w if i == 0 else " " + w, False) for i, w in enumerate(words)] + [("<|eot_id|>", True)]


class FakeTGI(BaseHTTPRequestHandler):
    seen: List[Tuple[str, dict]] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/info":
            self.answer(200, {"model_id": REPO, "max_total_tokens": 4096, "max_input_tokens": 4095})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeTGI.seen.append((self.path, body))
        tokens = reply_tokens(body["inputs"])
        items = [{"id": i, "text": t, "logprob": -0.5, "special": s} for i, (t, s) in enumerate(tokens)]
        text = "".join(t for t, s in tokens if not s)
        details = {"finish_reason": "eos_token", "generated_tokens": len(tokens), "seed": None}
        if self.path == "/generate":
            self.answer(200, {"generated_text": text, "details": {**details, "prefill": [], "tokens": items}})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for i, token in enumerate(items):
            last = i == len(items) - 1
            event = {"index": i + 1, "token": token, "generated_text": text if last else None,
                     "details": details if last else None}
            self.wfile.write(f"data:{json.dumps(event)}\n\n".encode())
            self.wfile.flush()


@pytest.fixture
def fake_tgi() -> Iterator[str]:
    FakeTGI.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeTGI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def tgi_config(state_dir, url: str) -> dict:
    cfg = run_config(state_dir, {})
    cfg["providers"]["inference"] = [
        {"provider_id": "tgi", "provider_type": "remote::tgi", "config": {"url": url, "timeout": 10}}
    ]
    return cfg


def client(url: str) -> LlamaStackClient:
    return LlamaStackClient(base_url=url, max_retries=0, timeout=30)


def test_chat_through_tgi(fake_tgi, state_dir, server):
    stack = server(tgi_config(state_dir, fake_tgi))
    c = client(stack.url)
    models = {m.identifier: m for m in c.models.list()}
    assert models[LLAMA].provider_id == "tgi"
    assert models[LLAMA].metadata["huggingface_repo"] == REPO

    r = c.inference.chat_completion(model=LLAMA, messages=[{"role": "user", "content": "hello"}])
    assert r.completion_message.content == "You said: hello"
    assert r.completion_message.stop_reason == "end_of_turn"
    path, body = FakeTGI.seen[-1]
    assert path == "/generate"
    assert body["inputs"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert body["inputs"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert body["parameters"]["stop"] == ["<|eom_id|>", "<|eot_id|>"]

    chunks = list(c.inference.chat_completion(model=LLAMA, messages=[{"role": "user", "content": "hi"}], stream=True))
    kinds = [ch.event.event_type for ch in chunks]
    assert kinds[0] == "start" and kinds[-1] == "complete" and kinds.count("progress") == 3
    assert "".join(ch.event.delta for ch in chunks if ch.event.event_type == "progress") == "You said: hi"
    assert FakeTGI.seen[-1][0] == "/generate_stream"

    r = c.inference.chat_completion(
        model=LLAMA, messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[{"tool_name": "brave_search"}],
    )
    assert r.completion_message.stop_reason == "end_of_message"
    call = r.completion_message.tool_calls[0]
    assert call.tool_name == "brave_search" and call.arguments == {"query": "Paris weather"}

    with pytest.raises(APIStatusError) as err:
        c.models.register(model={"identifier": "big", "llama_model": "Llama3.1-70B-Instruct",
                                 "provider_id": "tgi", "metadata": {}})
    assert err.value.status_code == 400 and "serves only" in str(err.value)


def test_a_tgi_that_is_down(state_dir, server):
    stack = server(tgi_config(state_dir, f"http://127.0.0.1:{free_port()}"))
    c = client(stack.url)
    assert not [m for m in c.models.list() if m.provider_id == "tgi"]
    # Nothing is listed, so the model is registered by hand, as a run config would.
    c.models.register(model={"identifier": LLAMA, "llama_model": LLAMA, "provider_id": "tgi", "metadata": {}})
    with pytest.raises(APIStatusError) as err:
        c.inference.chat_completion(model=LLAMA, messages=[{"role": "user", "content": "hello"}])
    assert err.value.status_code == 503
    assert "tgi" in str(err.value)

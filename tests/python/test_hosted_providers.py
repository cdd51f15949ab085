"""Hosted inference services (`remote::together`, `remote::fireworks`) behind `llama stack run`,
driven by the official client: the model map, the key sent per request in the
`X-LlamaStack-ProviderData` header, and the error when there is none. The services' completions
API is played by the fake backend's OpenAI-compatible routes."""

from __future__ import annotations

import json

import pytest
from llama_stack_client import APIStatusError, LlamaStackClient

from conftest import run_config

MESSAGES = [{"role": "user", "content": "hello"}]


def hosted_config(state_dir, providers: dict) -> dict:
    cfg = run_config(state_dir, {})
    cfg["providers"]["inference"] = [
        {"provider_id": pid, "provider_type": ptype, "config": conf} for pid, (ptype, conf) in providers.items()
    ]
    return cfg


@pytest.fixture
def stack(fake_ollama, state_dir, server):
    url = fake_ollama(tokens=4)
    return server(hosted_config(state_dir, {
        "together": ("remote::together", {"url": url + "/v1"}),
        "fireworks": ("remote::fireworks", {"url": url, "api_key": "configured"}),
    }))


def client(url: str, **provider_data: str) -> LlamaStackClient:
    headers = {"X-LlamaStack-ProviderData": json.dumps(provider_data)} if provider_data else None
    return LlamaStackClient(base_url=url, default_headers=headers, max_retries=0, timeout=30)


def test_models_are_listed_under_llama_ids_per_provider(stack):
    models = client(stack.url).models.list()
    by_provider = {}
    for m in models:
        by_provider.setdefault(m.provider_id, set()).add(m.identifier)
    assert "Llama3.1-405B-Instruct" in by_provider["together"]
    assert "Llama3.2-1B-Instruct" in by_provider["fireworks"]
    # One id served by both: the first provider in the run config answers for it.
    assert "Llama3.1-8B-Instruct" in by_provider["together"] | by_provider["fireworks"]


def test_the_key_comes_with_the_request(stack):
    with pytest.raises(APIStatusError) as err:
        client(stack.url).inference.chat_completion(model="Llama3.1-405B-Instruct", messages=MESSAGES)
    assert err.value.status_code == 400
    assert "together_api_key" in str(err.value)

    # The client's own per-call parameter for the header, and a client-wide header.
    r = client(stack.url).inference.chat_completion(
        model="Llama3.1-405B-Instruct", messages=MESSAGES,
        x_llama_stack_provider_data=json.dumps({"together_api_key": "from-the-call"}),
    )
    assert r.completion_message.content
    keyed = client(stack.url, together_api_key="from-the-client")
    chunks = list(keyed.inference.chat_completion(model="Llama3.1-405B-Instruct", messages=MESSAGES, stream=True))
    kinds = [c.event.event_type for c in chunks]
    assert kinds[0] == "start" and kinds[-1] == "complete" and "progress" in kinds


def test_a_configured_key_needs_no_header(stack):
    r = client(stack.url).inference.completion(model="Llama3.2-1B-Instruct", content="Once upon a time")
    assert r.completion_message.content
    with pytest.raises(APIStatusError) as err:
        client(stack.url).models.register(
            model={"identifier": "mystery", "llama_model": "Mystery-7B", "provider_id": "fireworks", "metadata": {}}
        )
    assert err.value.status_code == 400
    assert "Mystery-7B" in str(err.value) and "Llama3.1-8B-Instruct" in str(err.value)

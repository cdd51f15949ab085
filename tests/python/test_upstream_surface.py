"""The rest of 0.0.41's Python surface, imported the way programs written for it import it:
the server module, the resolver and config upgrade, per-request provider data, the small HTTP
clients of each API with their command lines, the event loggers, the router spec classes and the
module names older code still uses.

Inference, models and inspect run end to end against a real server (and in process against the
embedded model); the other clients are checked for the requests they send, against a local
server that records them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from conftest import free_port, run_config, stop, wait_http
from test_embedded import cached_models, home  # noqa: F401  (fixtures: the shared model cache)

from llama_models.llama3.api.datatypes import (
    BuiltinTool,
    SamplingParams,
    StopReason,
    SystemMessage,
    ToolDefinition,
    ToolParamDefinition,
    ToolPromptFormat,
    UserMessage,
)
from llama_stack.apis.agents import AgentConfig, AgentTurnCreateRequest, AgentTurnResponseStreamChunk
from llama_stack.apis.agents.client import AgentsClient
from llama_stack.apis.inference import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseEventType,
    ChatCompletionResponseStreamChunk,
    CompletionResponse,
    EmbeddingsResponse,
)
from llama_stack.apis.inference.client import InferenceClient
from llama_stack.apis.inference.event_logger import EventLogger as InferenceEventLogger
from llama_stack.apis.inspect.client import InspectClient
from llama_stack.apis.memory import MemoryBankDocument
from llama_stack.apis.memory.client import MemoryClient
from llama_stack.apis.memory_banks import KeyValueMemoryBankDef, VectorMemoryBankDef
from llama_stack.apis.memory_banks.client import MemoryBanksClient, deserialize_memory_bank_def
from llama_stack.apis.models import ModelDefWithProvider
from llama_stack.apis.models.client import ModelsClient
from llama_stack.apis.safety import RunShieldResponse
from llama_stack.apis.safety.client import SafetyClient
from llama_stack.apis.shields import ShieldDefWithProvider
from llama_stack.apis.shields.client import ShieldsClient
from llama_stack.distribution.configure import parse_and_maybe_upgrade_config
from llama_stack.distribution.datatypes import (
    Api,
    AutoRoutedProviderSpec,
    ProviderSpec,
    RoutingTableProviderSpec,
    StackRunConfig,
)
from llama_stack.distribution.request_headers import (
    NeedsRequestProviderData,
    get_request_provider_data,
    set_request_provider_data,
)
from llama_stack.distribution.resolver import check_protocol_compliance, resolve_impls_with_routing
from llama_stack.distribution.utils.command_line import UsageError, parse
from llama_stack.providers.datatypes import InlineProviderSpec

LLAMA_TAG = "llama3.1:8b-instruct-fp16"
MODEL = "Llama3.1-8B-Instruct"
HEADER = "X-LlamaStack-ProviderData"


def _env() -> Dict[str, str]:
    return dict(os.environ)


# ---------------------------------------------------------------- run config upgrade


OLD_CONFIG = {
    "built_at": "2024-09-20T10:00:00",
    "image_name": "local",
    "docker_image": None,
    "conda_env": "local",
    "apis_to_serve": ["inference", "models", "telemetry"],
    "api_providers": {
        "inference": {"providers": ["remote::ollama"]},
        "telemetry": {"provider_type": "meta-reference", "config": {}},
    },
    "routing_table": {
        "inference": [
            {"routing_key": "Llama3.1-8B-Instruct", "provider_type": "remote::ollama", "config": {"url": "http://a"}},
            {"routing_key": "Llama3.2-1B-Instruct", "provider_type": "remote::ollama", "config": {"url": "http://b"}},
        ],
    },
}


def test_old_format_is_upgraded_without_touching_the_input():
    before = json.dumps(OLD_CONFIG, sort_keys=True)
    config = parse_and_maybe_upgrade_config(json.loads(before))
    assert isinstance(config, StackRunConfig)
    assert config.version == "2" and config.apis == ["inference", "models", "telemetry"]
    ids = [(p.provider_id, p.provider_type, p.config) for p in config.providers["inference"]]
    assert ids == [
        ("remote::ollama-00", "remote::ollama", {"url": "http://a"}),
        ("remote::ollama-01", "remote::ollama", {"url": "http://b"}),
    ]
    assert [p.provider_id for p in config.providers["telemetry"]] == ["meta-reference"]
    original = json.loads(before)
    parse_and_maybe_upgrade_config(original)
    assert json.dumps(original, sort_keys=True) == before


def test_current_format_and_numeric_version_parse_as_they_are():
    current = {
        "version": "2",
        "image_name": "x",
        "providers": {"inference": [{"provider_id": "o", "provider_type": "remote::ollama", "config": {}}]},
    }
    assert parse_and_maybe_upgrade_config(current).providers["inference"][0].provider_id == "o"
    config = parse_and_maybe_upgrade_config({**current, "version": 2})
    assert config.version == "2"


@pytest.mark.parametrize(
    "broken",
    [
        {"image_name": "x", "apis_to_serve": [], "routing_table": {}, "api_providers": {}},
        {"image_name": "x", "apis_to_serve": ["inference"], "routing_table": {"inference": []}},
        {"image_name": "x", "routing_table": {}, "api_providers": {"inference": {"providers": []}}},
        {"apis_to_serve": [], "routing_table": {"inference": [{"provider_type": "remote::ollama", "config": {}}]}},
        {"image_name": "x", "routing_table": {"inference": [{"config": {}}]}},
    ],
)
def test_old_format_with_empty_sections_raises_value_error(broken):
    with pytest.raises(ValueError):
        parse_and_maybe_upgrade_config(broken)


def test_empty_sections_name_the_problem():
    with pytest.raises(ValueError, match="no provider"):
        parse_and_maybe_upgrade_config({"image_name": "x", "routing_table": {}, "api_providers": {}})
    with pytest.raises(ValueError, match="`inference` has no provider"):
        parse_and_maybe_upgrade_config({"image_name": "x", "routing_table": {"inference": []}})


# ---------------------------------------------------------------- datatypes and module names


def test_router_specs_are_provider_specs():
    router = AutoRoutedProviderSpec(api=Api.inference, module="m", routing_table_api=Api.models)
    table = RoutingTableProviderSpec(api=Api.models, module="m", router_api=Api.inference)
    assert isinstance(router, ProviderSpec) and isinstance(table, ProviderSpec)
    assert router.provider_type == "router" and router.config_class == ""
    assert table.provider_type == "routing_table" and table.pip_packages == []
    with pytest.raises(AssertionError):
        router.pip_packages


def test_stale_module_names_reexport_the_current_ones():
    import llama_stack.apis.inference as current
    import llama_stack.inference.api as stale
    from llama_stack.inference import prompt_adapter
    from llama_stack.providers.utils.inference import prompt_adapter as real

    assert stale.ChatCompletionRequest is current.ChatCompletionRequest
    assert stale.Inference is current.Inference
    assert prompt_adapter.chat_completion_request_to_messages is real.chat_completion_request_to_messages


# The stale modules imported the way 0.0.41's own prompt tests import them.
def _prompt_namespace() -> Dict[str, Any]:
    ns: Dict[str, Any] = {}
    exec(
        "from llama_models.llama3.api import *\n"
        "from llama_stack.inference.api import *\n"
        "from llama_stack.inference.prompt_adapter import chat_completion_request_to_messages\n",
        ns,
    )
    return ns


def test_prompt_adapter_adds_the_default_system_prompt():
    ns = _prompt_namespace()
    request = ns["ChatCompletionRequest"](model=MODEL, messages=[ns["UserMessage"](content="Hi")])
    messages = ns["chat_completion_request_to_messages"](request)
    assert len(messages) == 2 and messages[-1].content == "Hi"
    assert "Cutting Knowledge Date: December 2023" in messages[0].content


def test_prompt_adapter_builtin_and_custom_tools():
    from llama_stack.inference.prompt_adapter import chat_completion_request_to_messages

    custom = ToolDefinition(
        tool_name="lookup",
        description="find a thing",
        parameters={"name": ToolParamDefinition(param_type="str", description="what", required=True)},
    )
    builtin = [ToolDefinition(tool_name=BuiltinTool.code_interpreter), ToolDefinition(tool_name=BuiltinTool.brave_search)]

    only_builtin = chat_completion_request_to_messages(
        ChatCompletionRequest(model=MODEL, messages=[UserMessage(content="Hi")], tools=builtin)
    )
    assert len(only_builtin) == 2 and "Tools: brave_search" in only_builtin[0].content

    both = chat_completion_request_to_messages(
        ChatCompletionRequest(
            model=MODEL,
            messages=[UserMessage(content="Hi")],
            tools=[*builtin, custom],
            tool_prompt_format=ToolPromptFormat.json,
        )
    )
    assert len(both) == 3
    assert "Environment: ipython" in both[0].content and "Tools: brave_search" in both[0].content
    assert "Return function calls in JSON format" in both[1].content
    assert both[-1].content == "Hi"

    pirate = chat_completion_request_to_messages(
        ChatCompletionRequest(
            model=MODEL,
            messages=[SystemMessage(content="You are a pirate"), UserMessage(content="Hi")],
            tools=builtin[:1],
        )
    )
    assert len(pirate) == 2 and pirate[0].content.endswith("You are a pirate")


def test_prompt_adapter_leaves_unknown_models_alone():
    from llama_stack.inference.prompt_adapter import chat_completion_request_to_messages

    request = ChatCompletionRequest(model="qwen:0.5b", messages=[UserMessage(content="Hi")])
    assert chat_completion_request_to_messages(request) == request.messages


def test_prompt_text_ends_with_the_assistant_header():
    from llama_stack.providers.utils.inference.prompt_adapter import chat_completion_request_to_prompt

    prompt = chat_completion_request_to_prompt(ChatCompletionRequest(model=MODEL, messages=[UserMessage(content="Hi")]))
    assert prompt.startswith("<|begin_of_text|>") and "Hi<|eot_id|>" in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


# ---------------------------------------------------------------- provider data


class _Validator:
    """Stands in for a provider's `provider_data_validator` class."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key


class _NeedsKey(NeedsRequestProviderData):
    def __init__(self, validator: str = f"{__name__}._Validator") -> None:
        self.__provider_spec__ = InlineProviderSpec(
            api=Api.inference, provider_type="test", config_class="", module="", provider_data_validator=validator
        )


async def test_provider_data_is_set_per_context():
    set_request_provider_data({HEADER: json.dumps({"api_key": "one"})})
    assert get_request_provider_data() == {"api_key": "one"}
    assert _NeedsKey().get_request_provider_data().api_key == "one"

    async def other_request() -> Any:
        set_request_provider_data({HEADER.lower(): '{"api_key": "two"}'})
        await asyncio.sleep(0)
        return get_request_provider_data()

    assert await asyncio.create_task(other_request()) == {"api_key": "two"}
    # The other task's header stays with that task.
    assert get_request_provider_data() == {"api_key": "one"}

    set_request_provider_data({"x-llamastack-PROVIDERDATA": '{"api_key": "three"}'})
    assert get_request_provider_data() == {"api_key": "three"}

    # A request without the header, or with a broken one, has no provider data.
    set_request_provider_data({"Content-Type": "application/json"})
    assert get_request_provider_data() is None and _NeedsKey().get_request_provider_data() is None
    set_request_provider_data({HEADER: "{not json"})
    assert get_request_provider_data() is None
    set_request_provider_data({HEADER: '{"wrong_field": 1}'})
    assert _NeedsKey().get_request_provider_data() is None
    with pytest.raises(ValueError, match="does not have a validator"):
        _NeedsKey(validator="").get_request_provider_data()
    set_request_provider_data({})


@pytest.fixture
def together_stack(fake_ollama, state_dir):
    """`remote::together` with no key of its own; its completions API is the fake backend's
    OpenAI-compatible one."""
    url = fake_ollama(tokens=4)
    cfg = run_config(state_dir, {})
    cfg["providers"]["inference"] = [
        {"provider_id": "together", "provider_type": "remote::together", "config": {"url": url + "/v1"}}
    ]
    return cfg


async def test_resolved_impls_honour_request_provider_data(together_stack):
    impls = await resolve_impls_with_routing(StackRunConfig(**together_stack))
    inference = impls[Api.inference]
    messages = [UserMessage(content="hello")]
    set_request_provider_data({})
    with pytest.raises(ValueError, match="together_api_key"):
        await inference.chat_completion(model="Llama3.1-405B-Instruct", messages=messages)

    set_request_provider_data({HEADER: json.dumps({"together_api_key": "k"})})
    r = await inference.chat_completion(model="Llama3.1-405B-Instruct", messages=messages)
    assert isinstance(r, ChatCompletionResponse) and r.completion_message.content
    chunks = [c async for c in inference.chat_completion(model="Llama3.1-405B-Instruct", messages=messages, stream=True)]
    assert chunks[-1].event.event_type == ChatCompletionResponseEventType.complete

    # The next request comes without the header: the key is gone again.
    set_request_provider_data({"Accept": "*/*"})
    with pytest.raises(ValueError, match="together_api_key"):
        await inference.chat_completion(model="Llama3.1-405B-Instruct", messages=messages)
    await impls[Api.inference].shutdown()


# ---------------------------------------------------------------- resolver


@pytest.fixture
def ollama_config(fake_ollama, state_dir) -> Dict[str, Any]:
    return run_config(state_dir, {"ollama": fake_ollama(models=[LLAMA_TAG, "smol:latest"], tokens=6)})


async def test_resolve_impls_keyed_by_api(ollama_config):
    impls = await resolve_impls_with_routing(StackRunConfig(**ollama_config))
    assert set(impls) == {Api.inference, Api.models, Api.telemetry, Api.inspect}

    inference = impls[Api.inference]
    assert isinstance(inference.__provider_spec__, AutoRoutedProviderSpec)
    assert inference.__provider_id__ == "__autorouted__"
    assert isinstance(impls[Api.models].__provider_spec__, RoutingTableProviderSpec)
    assert impls[Api.telemetry].__provider_id__ == "console"

    from llama_stack.apis.inference import Inference
    from llama_stack.apis.models import Models

    check_protocol_compliance(inference, Inference)
    check_protocol_compliance(impls[Api.models], Models)

    # Non-streaming calls are awaitables; streaming ones async iterators, not awaited.
    pending = inference.chat_completion(model=MODEL, messages=[UserMessage(content="hi")])
    assert asyncio.iscoroutine(pending)
    response = await pending
    assert isinstance(response, ChatCompletionResponse)
    assert response.completion_message.stop_reason == StopReason.end_of_turn

    stream = inference.chat_completion(model=MODEL, messages=[UserMessage(content="hi")], stream=True)
    assert hasattr(stream, "__aiter__") and not asyncio.iscoroutine(stream)
    chunks = [c async for c in stream]
    assert all(isinstance(c, ChatCompletionResponseStreamChunk) for c in chunks)
    assert chunks[0].event.event_type == ChatCompletionResponseEventType.start
    assert chunks[-1].event.event_type == ChatCompletionResponseEventType.complete
    text = "".join(c.event.delta for c in chunks if c.event.event_type == ChatCompletionResponseEventType.progress)
    assert text == response.completion_message.content

    completion = await inference.completion(model=MODEL, content="Once")
    assert isinstance(completion, CompletionResponse)

    models = await impls[Api.models].list_models()
    assert MODEL in {m.identifier for m in models}
    assert (await impls[Api.models].get_model(identifier=MODEL)).provider_id == "ollama"
    assert await impls[Api.models].get_model(identifier="nope") is None

    health = await impls[Api.inspect].health()
    assert health.status == "OK"
    providers = await impls[Api.inspect].list_providers()
    assert [p.provider_id for p in providers["inference"]] == ["ollama"]

    with pytest.raises(ValueError, match="nope"):
        await inference.chat_completion(model="nope", messages=[UserMessage(content="hi")])
    await inference.shutdown()


async def test_resolver_takes_an_upgraded_old_config(fake_ollama, state_dir):
    url = fake_ollama(models=[LLAMA_TAG])
    old = {
        "image_name": "old",
        "apis_to_serve": ["inference", "models"],
        "api_providers": {},
        "routing_table": {"inference": [{"routing_key": MODEL, "provider_type": "remote::ollama", "config": {"url": url}}]},
    }
    impls = await resolve_impls_with_routing(parse_and_maybe_upgrade_config(old))
    assert set(impls) == {Api.inference, Api.models, Api.inspect}
    models = await impls[Api.models].list_models()
    assert [m.provider_id for m in models if m.identifier == MODEL] == ["remote::ollama"]
    r = await impls[Api.inference].chat_completion(model=MODEL, messages=[UserMessage(content="hi")])
    assert r.completion_message.content
    await impls[Api.inference].shutdown()


async def test_resolver_on_the_embedded_model(home):
    config = parse_and_maybe_upgrade_config(
        yaml.safe_load((Path(__file__).resolve().parents[2] / "python/llama_stack/templates/default-run.yaml").read_text())
    )
    impls = await resolve_impls_with_routing(config)
    inference = impls[Api.inference]
    greedy = SamplingParams(strategy="greedy", max_tokens=12)
    messages = [UserMessage(content="What is the capital of France?")]
    response = await inference.chat_completion(model="SmolLM2-135M-Instruct", messages=messages, sampling_params=greedy)
    assert response.completion_message.content.strip()
    chunks = [
        c
        async for c in inference.chat_completion(
            model="SmolLM2-135M-Instruct", messages=messages, sampling_params=greedy, stream=True
        )
    ]
    streamed = "".join(c.event.delta for c in chunks if c.event.event_type == ChatCompletionResponseEventType.progress)
    assert streamed == response.completion_message.content
    embeddings = await inference.embeddings(model="all-MiniLM-L6-v2", contents=["a", "b"])
    assert isinstance(embeddings, EmbeddingsResponse) and len(embeddings.embeddings[0]) == 384
    assert "SmolLM2-135M-Instruct" in {m.identifier for m in await impls[Api.models].list_models()}
    await inference.shutdown()


# ---------------------------------------------------------------- the server module


class ServerModule:
    """`python -m llama_stack.distribution.server.server` on a run config."""

    def __init__(self, config_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "llama_stack.distribution.server.server", *flags]
        cmd += ["--yaml_config", str(config_path), "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
        wait_http(self.url + "/health", self.proc)


@pytest.fixture
def served(tmp_path, ollama_config) -> Iterator[ServerModule]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(ollama_config))
    server = ServerModule(path, "--disable_ipv6")
    yield server
    assert stop(server.proc) == 0


def _client_module(api: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"llama_stack.apis.{api}.client", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )


def test_server_module_serves_and_client_modules_talk_to_it(served):
    port = str(served.port)
    streamed = _client_module("inference", "127.0.0.1", port, "--model", MODEL)
    assert streamed.returncode == 0, streamed.stderr
    assert "User>hello world" in streamed.stdout and "Assistant> " in streamed.stdout
    assert " tok0" in streamed.stdout

    whole = _client_module("inference", "127.0.0.1", port, "--model", MODEL, "--stream=False")
    assert whole.returncode == 0, whole.stderr
    assert "Assistant> \n tok0" in whole.stdout or "Assistant>  tok0" in whole.stdout

    models = _client_module("models", "127.0.0.1", port)
    assert models.returncode == 0, models.stderr
    assert "list_models response=" in models.stdout and "identifier='Llama3.1-8B-Instruct'" in models.stdout

    inspect_run = _client_module("inspect", "127.0.0.1", port)
    assert inspect_run.returncode == 0, inspect_run.stderr
    assert "health response=status='OK'" in inspect_run.stdout

    bad = _client_module("inference", "127.0.0.1")
    assert bad.returncode == 2 and "PORT" in bad.stderr
    down = _client_module("models", "127.0.0.1", str(free_port()))
    assert down.returncode == 1 and down.stderr.startswith("error: ") and "Traceback" not in down.stderr
    refused = _client_module("inference", "127.0.0.1", port, "--model", "nope", "--stream", "false")
    assert refused.returncode == 1 and "nope" in refused.stderr and "Traceback" not in refused.stderr


async def test_http_clients_against_the_server(served):
    inference = InferenceClient(served.url)
    messages = [UserMessage(content="hello")]
    response = await inference.chat_completion(model=MODEL, messages=messages)
    assert isinstance(response, ChatCompletionResponse) and response.completion_message.content.startswith(" tok0")
    chunks = [c async for c in inference.chat_completion(model=MODEL, messages=messages, stream=True)]
    assert isinstance(chunks[0], ChatCompletionResponseStreamChunk)
    assert [c.event.event_type for c in chunks][::len(chunks) - 1] == [
        ChatCompletionResponseEventType.start,
        ChatCompletionResponseEventType.complete,
    ]
    completion = await inference.completion(model=MODEL, content="Once")
    assert isinstance(completion, CompletionResponse)
    stream = [c async for c in inference.completion(model=MODEL, content="Once", stream=True)]
    assert "".join(c.delta for c in stream) == completion.completion_message.content

    lines = [str(log) async for log in InferenceEventLogger().log(inference.chat_completion(model=MODEL, messages=messages, stream=True))]
    assert lines[0] == "Assistant> " and lines[-1] == ""
    assert "".join(lines[1:-1]) == response.completion_message.content

    import httpx

    with pytest.raises(httpx.HTTPStatusError, match="nope"):
        await inference.chat_completion(model="nope", messages=messages)
    with pytest.raises(httpx.HTTPStatusError, match="nope"):
        [c async for c in inference.chat_completion(model="nope", messages=messages, stream=True)]

    models = ModelsClient(served.url)
    listed = await models.list_models()
    assert all(isinstance(m, ModelDefWithProvider) for m in listed)
    assert (await models.get_model(MODEL)).provider_id == "ollama"
    assert await models.get_model("nope") is None
    await models.register_model(
        ModelDefWithProvider(identifier="my-smol", llama_model="Llama3.2-1B-Instruct", provider_id="ollama", metadata={"ollama_model": "smol:latest"})
    )
    assert (await models.get_model("my-smol")).llama_model == "Llama3.2-1B-Instruct"

    inspect = InspectClient(served.url)
    assert (await inspect.health()).status == "OK"
    routes = await inspect.list_routes()
    assert any(r.route == "/inference/chat_completion" and r.method.upper() == "POST" for infos in routes.values() for r in infos)
    providers = await inspect.list_providers()
    assert providers["inference"][0].provider_type == "remote::ollama"


def test_server_module_on_the_embedded_model(home):
    config = Path(__file__).resolve().parents[2] / "python/llama_stack/templates/default-run.yaml"
    server = ServerModule(config, "--host", "127.0.0.1")
    try:
        run = _client_module("inference", "127.0.0.1", str(server.port), "--model", "SmolLM2-135M-Instruct")
        assert run.returncode == 0, run.stderr
        assert "Assistant> " in run.stdout
        answer = run.stdout.split("Assistant> ", 1)[1].strip()
        assert answer, run.stdout
        whole = asyncio.run(
            InferenceClient(server.url).chat_completion(
                model="SmolLM2-135M-Instruct",
                messages=[UserMessage(content="Say hi")],
                sampling_params=SamplingParams(strategy="greedy", max_tokens=8),
            )
        )
        assert whole.completion_message.content.strip()
        listed = asyncio.run(ModelsClient(server.url).list_models())
        assert {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"} <= {m.identifier for m in listed}
    finally:
        assert stop(server.proc) == 0


def test_config_dirs_follow_the_environment(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from llama_stack.distribution.utils.config_dirs import *; print(DEFAULT_CHECKPOINT_DIR)"],
        env=dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(tmp_path)), capture_output=True, text=True, timeout=60,
    )
    assert out.stdout.strip() == str(tmp_path / "checkpoints")


def test_server_module_flags(tmp_path, ollama_config):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(ollama_config))
    port = free_port()
    cmd = [sys.executable, "-m", "llama_stack.distribution.server.server", "--yaml-config", str(path)]
    proc = subprocess.Popen([*cmd, f"--port={port}", "--host", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    assert stop(proc) == 0

    missing = subprocess.run(
        [sys.executable, "-m", "llama_stack.distribution.server.server", "--yaml_config", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"image_name": "x", "apis_to_serve": [], "routing_table": {}, "api_providers": {}}))
    bad = subprocess.run(
        [sys.executable, "-m", "llama_stack.distribution.server.server", "--yaml_config", str(empty)],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 1 and "no provider" in bad.stderr and "Traceback" not in bad.stderr


def test_server_module_upgrades_an_old_config(tmp_path, fake_ollama):
    url = fake_ollama(models=[LLAMA_TAG])
    old = {
        "image_name": "old",
        "apis_to_serve": ["inference", "models"],
        "api_providers": {},
        "routing_table": {"inference": [{"routing_key": MODEL, "provider_type": "remote::ollama", "config": {"url": url}}]},
    }
    path = tmp_path / "old-run.yaml"
    path.write_text(yaml.safe_dump(old))
    server = ServerModule(path, "--host", "127.0.0.1")
    try:
        r = asyncio.run(InferenceClient(server.url).chat_completion(model=MODEL, messages=[UserMessage(content="hi")]))
        assert r.completion_message.content
    finally:
        assert stop(server.proc) == 0


# ---------------------------------------------------------------- request shapes of the other clients


class Recorder:
    """A local HTTP server that records each request and answers from a table of routes."""

    def __init__(self, answers: Dict[str, Any]) -> None:
        self.requests: List[Tuple[str, str, Dict[str, List[str]], Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                recorder.requests.append((method, url.path, parse_qs(url.query), body))
                answer = answers.get(url.path)
                if isinstance(answer, list) and url.path.endswith("/turn/create"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for event in answer:
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    return
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Any]:
    made: List[Recorder] = []

    def make(answers: Dict[str, Any]) -> Recorder:
        r = Recorder(answers)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


TURN_EVENTS = [
    {"event": {"payload": {"event_type": "turn_start", "turn_id": "t1"}}},
    {"event": {"payload": {"event_type": "step_start", "step_type": "inference", "step_id": "s1"}}},
    {"event": {"payload": {"event_type": "step_progress", "step_type": "inference", "step_id": "s1", "model_response_text_delta": "Hi"}}},
    {"event": {"payload": {"event_type": "step_complete", "step_type": "inference", "step_details": {
        "turn_id": "t1", "step_id": "s1", "step_type": "inference",
        "model_response": {"role": "assistant", "content": "Hi", "stop_reason": "end_of_turn", "tool_calls": []}}}}},
]


async def test_agents_client_requests(recorder):
    server = recorder({
        "/agents/create": {"agent_id": "a1"},
        "/agents/session/create": {"session_id": "s1"},
        "/agents/turn/create": TURN_EVENTS,
    })
    client = AgentsClient(server.url)
    config = AgentConfig(model=MODEL, instructions="be brief", enable_session_persistence=False)
    assert (await client.create_agent(config)).agent_id == "a1"
    assert (await client.create_agent_session(agent_id="a1", session_name="test")).session_id == "s1"
    request = AgentTurnCreateRequest(agent_id="a1", session_id="s1", messages=[UserMessage(content="hi")], stream=True)
    chunks = [c async for c in client.create_agent_turn(request)]
    assert all(isinstance(c, AgentTurnResponseStreamChunk) for c in chunks) and len(chunks) == 4

    # 0.0.41's loop over the agents EventLogger: `(event, log)` pairs, log None for turn events.
    from llama_stack.apis.agents.event_logger import EventLogger

    pairs = [(event, log) async for event, log in EventLogger().log(client.create_agent_turn(request))]
    assert pairs[0][1] is None and pairs[0][0].payload.event_type == "turn_start"
    printed = "".join(str(log) + log.end for _, log in pairs if log is not None)
    assert printed == "inference> Hi\n"

    (m1, p1, _, b1), (m2, p2, _, b2), (m3, p3, _, b3) = server.requests[:3]
    assert (m1, p1) == ("POST", "/agents/create") and b1["agent_config"]["instructions"] == "be brief"
    assert b1["agent_config"]["model"] == MODEL
    assert (m2, p2, b2) == ("POST", "/agents/session/create", {"agent_id": "a1", "session_name": "test"})
    assert (m3, p3) == ("POST", "/agents/turn/create")
    assert b3["agent_id"] == "a1" and b3["session_id"] == "s1" and b3["stream"] is True
    assert b3["messages"] == [{"role": "user", "content": "hi", "context": None}]

    with pytest.raises(NotImplementedError):
        client.create_agent_turn(AgentTurnCreateRequest(agent_id="a1", session_id="s1", messages=[]))


async def test_memory_and_bank_clients_requests(recorder):
    bank = {"identifier": "b", "provider_id": "", "type": "vector", "embedding_model": "all-MiniLM-L6-v2",
            "chunk_size_in_tokens": 512, "overlap_size_in_tokens": 64}
    server = recorder({
        "/memory_banks/register": None,
        "/memory_banks/list": [bank, {"identifier": "kv", "provider_id": "p", "type": "keyvalue"}],
        "/memory_banks/get": bank,
        "/memory/insert": None,
        "/memory/query": {"chunks": [{"content": "text", "token_count": 1, "document_id": "d"}], "scores": [0.5]},
    })
    banks = MemoryBanksClient(server.url)
    await banks.register_memory_bank(VectorMemoryBankDef(**bank))
    listed = await banks.list_memory_banks()
    assert isinstance(listed[0], VectorMemoryBankDef) and isinstance(listed[1], KeyValueMemoryBankDef)
    assert (await banks.get_memory_bank("b")).embedding_model == "all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match="type"):
        deserialize_memory_bank_def({"identifier": "x"})
    assert deserialize_memory_bank_def(None) is None

    memory = MemoryClient(server.url)
    await memory.insert_documents(bank_id="b", documents=[MemoryBankDocument(document_id="d", content="some text")])
    found = await memory.query_documents(bank_id="b", query=["what"], params={"max_chunks": 2})
    assert found.scores == [0.5] and found.chunks[0].document_id == "d"

    shapes = [(m, p, q, b) for m, p, q, b in server.requests]
    assert shapes[0] == ("POST", "/memory_banks/register", {}, {"memory_bank": bank})
    assert shapes[1][:2] == ("GET", "/memory_banks/list")
    assert shapes[2][:3] == ("GET", "/memory_banks/get", {"identifier": ["b"]})
    assert shapes[3][:2] == ("POST", "/memory/insert")
    assert shapes[3][3] == {"bank_id": "b", "documents": [{"document_id": "d", "content": "some text", "mime_type": None, "metadata": {}}]}
    assert shapes[4] == ("POST", "/memory/query", {}, {"bank_id": "b", "query": ["what"], "params": {"max_chunks": 2}})


async def test_safety_and_shield_clients_requests(recorder):
    shield = {"identifier": "llama_guard", "type": "llama_guard", "params": {}, "provider_id": "p"}
    server = recorder({
        "/safety/run_shield": {"violation": None},
        "/shields/list": [shield],
        "/shields/get": shield,
        "/shields/register": None,
    })
    safety = SafetyClient(server.url)
    response = await safety.run_shield(shield_type="llama_guard", messages=[UserMessage(content="hello")])
    assert isinstance(response, RunShieldResponse) and response.violation is None

    shields = ShieldsClient(server.url)
    assert (await shields.list_shields())[0].type == "llama_guard"
    assert (await shields.get_shield("llama_guard")).provider_id == "p"
    await shields.register_shield(ShieldDefWithProvider(**shield))

    (m1, p1, _, b1), (m2, p2, _, _), (m3, p3, q3, _), (m4, p4, _, b4) = server.requests
    assert (m1, p1) == ("POST", "/safety/run_shield")
    assert b1 == {"shield_type": "llama_guard", "messages": [{"role": "user", "content": "hello", "context": None}]}
    assert (m2, p2) == ("GET", "/shields/list")
    assert (m3, p3, q3) == ("GET", "/shields/get", {"shield_type": ["llama_guard"]})
    assert (m4, p4, b4) == ("POST", "/shields/register", {"shield": shield})


def test_client_modules_run_against_a_recording_server(recorder):
    server = recorder({"/shields/list": [], "/memory_banks/list": [], "/safety/run_shield": {"violation": None}})
    port = server.url.rsplit(":", 1)[1]
    for api, expected in (("shields", "list_shields response=[]"), ("memory_banks", "list_memory_banks response=[]")):
        run = _client_module(api, "127.0.0.1", port)
        assert run.returncode == 0, run.stderr
        assert expected in run.stdout
    safety = _client_module("safety", "127.0.0.1", port)
    assert safety.returncode == 0, safety.stderr
    assert safety.stdout.count("violation=None") == 2
    assert [p for _, p, _, _ in server.requests][-2:] == ["/safety/run_shield", "/safety/run_shield"]


# ---------------------------------------------------------------- small pieces


async def test_inference_event_logger_on_whole_responses():
    from llama_models.llama3.api.datatypes import CompletionMessage

    async def one():
        yield ChatCompletionResponse(completion_message=CompletionMessage(content="Paris", stop_reason=StopReason.end_of_turn))

    logs = [log async for log in InferenceEventLogger().log(one())]
    assert [str(log) for log in logs] == ["Assistant> ", "Paris"]


def test_command_line_reads_flags_like_upstreams():
    def main(host: str, port: int, stream: bool = True, model: Any = None) -> None: ...

    assert parse(main, ["h", "5000"]) == {"host": "h", "port": 5000}
    assert parse(main, ["h", "1", "--stream=False", "--model", "m"]) == {"host": "h", "port": 1, "stream": False, "model": "m"}
    assert parse(main, ["--host", "h", "--port", "1", "--nostream"]) == {"host": "h", "port": 1, "stream": False}
    assert parse(main, ["h", "1", "--stream"]) == {"host": "h", "port": 1, "stream": True}
    for bad in (["h"], ["h", "x"], ["h", "1", "--colour", "red"], ["h", "1", "2"]):
        with pytest.raises(UsageError):
            parse(main, bad)


def test_server_module_reads_flags_in_every_spelling():
    from llama_stack.distribution.server.server import _normalise, build_parser

    def args(*argv: str) -> Tuple[Any, Any, Any, Any]:
        a = build_parser().parse_args(_normalise(argv))
        return a.yaml_config or a.positional_config, a.port or a.positional_port, a.disable_ipv6, a.host

    assert args("--yaml_config", "r.yaml", "--port", "1", "--disable-ipv6") == ("r.yaml", 1, True, None)
    assert args("--yaml-config=r.yaml", "--port=2", "--disable_ipv6=False") == ("r.yaml", 2, False, None)
    assert args("--yaml_config", "r.yaml", "--disable_ipv6", "true", "--host", "::1") == ("r.yaml", None, True, "::1")
    assert args("r.yaml", "3", "--nodisable_ipv6") == ("r.yaml", 3, False, None)


async def test_provider_test_fixture_resolves_from_provider_config(fake_ollama, tmp_path, monkeypatch, state_dir):
    """0.0.41's provider suites get their implementations from `resolve_impls_for_test`."""
    from llama_stack.providers.tests.resolver import resolve_impls_for_test

    url = fake_ollama(tokens=4)
    path = tmp_path / "provider_config.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {"inference": [
            {"provider_id": "ollama", "provider_type": "remote::ollama", "config": {"url": url}},
            {"provider_id": "together", "provider_type": "remote::together", "config": {"url": url + "/v1"}},
        ]},
        "provider_data": {"together": {"together_api_key": "from-the-file"}},
    }))
    monkeypatch.setenv("PROVIDER_CONFIG", str(path))

    impls = await resolve_impls_for_test(Api.inference)
    assert {m.provider_id for m in await impls[Api.models].list_models()} == {"ollama"}
    r = await impls[Api.inference].chat_completion(model=MODEL, messages=[UserMessage(content="hi")])
    assert r.completion_message.content
    await impls[Api.inference].shutdown()

    # The chosen provider's entry under `provider_data` becomes the request's provider data.
    monkeypatch.setenv("PROVIDER_ID", "together")
    impls = await resolve_impls_for_test(Api.inference)
    assert get_request_provider_data() == {"together_api_key": "from-the-file"}
    r = await impls[Api.inference].chat_completion(model="Llama3.1-405B-Instruct", messages=[UserMessage(content="hi")])
    assert r.completion_message.content
    set_request_provider_data({})
    await impls[Api.inference].shutdown()

    monkeypatch.setenv("PROVIDER_ID", "nope")
    with pytest.raises(ValueError, match="nope"):
        await resolve_impls_for_test(Api.inference)
    monkeypatch.delenv("PROVIDER_ID")
    with pytest.raises(ValueError, match="safety"):
        await resolve_impls_for_test(Api.inference, deps=[Api.safety])


def test_endpoints_and_routed_apis():
    from llama_stack.distribution.distribution import builtin_automatically_routed_apis, providable_apis
    from llama_stack.distribution.server.endpoints import get_all_api_endpoints

    endpoints = get_all_api_endpoints()
    chat = [e for e in endpoints[Api.inference] if e.name == "chat_completion"]
    assert [(e.route, e.method) for e in chat] == [("/inference/chat_completion", "post")]
    assert ("/models/list", "get") in {(e.route, e.method) for e in endpoints[Api.models]}
    assert {(i.router_api, i.routing_table_api) for i in builtin_automatically_routed_apis()} == {
        (Api.inference, Api.models), (Api.safety, Api.shields), (Api.memory, Api.memory_banks)
    }
    assert Api.models not in providable_apis() and Api.inference in providable_apis()

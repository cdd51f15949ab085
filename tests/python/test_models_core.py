"""Datatypes and protocols of the core APIs, checked against the 0.0.41 OpenAPI document."""

import inspect
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from llama_stack.apis import (
    batch_inference,
    common,  # noqa: F401
    inference,
    inspect as inspect_api,
    memory,
    memory_banks,
    models,
    safety,
    shields,
    telemetry,
)
from llama_stack.apis.common import deployment_types, training_types
from llama_stack.apis.common.deployment_types import RestAPIExecutionConfig, RestAPIMethod
from llama_stack.apis.common.training_types import Checkpoint
from llama_stack.apis.inference import ChatCompletionRequest, ChatCompletionResponseStreamChunk
from llama_stack.apis.memory_banks import VectorMemoryBankDef
from llama_stack.distribution.datatypes import Api, Provider, StackRunConfig

ROOT = Path(__file__).resolve().parents[2]
# The wire contract sits beside the checkout, in ../shared/spec.
SPEC_PATH = ROOT.parent / "shared" / "spec" / "llama-stack-spec-v0.0.41.json"

API_MODULES = [
    batch_inference,
    inference,
    inspect_api,
    memory,
    memory_banks,
    models,
    safety,
    shields,
    telemetry,
]
PROTOCOLS = {
    "BatchInference": batch_inference.BatchInference,
    "Inference": inference.Inference,
    "Inspect": inspect_api.Inspect,
    "Memory": memory.Memory,
    "MemoryBanks": memory_banks.MemoryBanks,
    "Models": models.Models,
    "Safety": safety.Safety,
    "Shields": shields.Shields,
    "Telemetry": telemetry.Telemetry,
}

NOW = "2024-10-10T12:00:00"
USER = {"role": "user", "content": "hello"}
TOOL_CALL = {"call_id": "c1", "tool_name": "get_weather", "arguments": {"city": "Paris"}}
ASSISTANT = {
    "role": "assistant",
    "content": "",
    "stop_reason": "end_of_turn",
    "tool_calls": [TOOL_CALL],
}


@pytest.fixture(scope="module")
def spec():
    if not SPEC_PATH.exists():
        pytest.fail(f"the 0.0.41 OpenAPI document is missing: {SPEC_PATH} (../shared/spec beside the checkout)")
    return json.loads(SPEC_PATH.read_text())


def webmethods(protocol):
    for name, fn in inspect.getmembers(protocol, inspect.isfunction):
        meta = getattr(fn, "__webmethod__", None)
        if meta is not None:
            yield name, fn, meta


def our_models():
    """Every pydantic model defined in the API modules (not the ones re-exported from elsewhere)."""
    found = {}
    impls = [sys.modules[m.__name__ + "." + m.__name__.rsplit(".", 1)[1]] for m in API_MODULES]
    for impl in impls + [deployment_types, training_types]:
        for name, obj in vars(impl).items():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == impl.__name__:
                found[name] = obj
    return found


# ---------------------------------------------------------------------------------------------
# Construction, dump and validation of each class

SAMPLES = [
    (models.ModelDef, {"identifier": "m", "llama_model": "Llama3.1-8B-Instruct"}),
    (models.ModelDefWithProvider, {"identifier": "m", "llama_model": "L", "provider_id": "p"}),
    (models.RegisterModelRequest, {"model": {"identifier": "m", "llama_model": "L", "provider_id": "p"}}),
    (shields.ShieldDef, {"identifier": "llama_guard", "type": "llama_guard"}),
    (shields.ShieldDefWithProvider, {"identifier": "s", "type": "prompt_guard", "provider_id": "p"}),
    (shields.RegisterShieldRequest, {"shield": {"identifier": "s", "type": "t", "provider_id": "p"}}),
    (
        memory_banks.VectorMemoryBankDef,
        {"identifier": "b", "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 512},
    ),
    (memory_banks.KeyValueMemoryBankDef, {"identifier": "b"}),
    (memory_banks.KeywordMemoryBankDef, {"identifier": "b"}),
    (memory_banks.GraphMemoryBankDef, {"identifier": "b", "provider_id": "p"}),
    (memory_banks.RegisterMemoryBankRequest, {"memory_bank": {"identifier": "b", "type": "keyword"}}),
    (inference.LogProbConfig, {"top_k": 3}),
    (inference.Fp8QuantizationConfig, {}),
    (inference.Bf16QuantizationConfig, {"type": "bf16"}),
    (inference.ToolCallDelta, {"content": TOOL_CALL, "parse_status": "success"}),
    (inference.ToolCallDelta, {"content": "get_wea", "parse_status": "in_progress"}),
    (inference.ChatCompletionResponseEvent, {"event_type": "progress", "delta": "tok"}),
    (
        inference.ChatCompletionResponseStreamChunk,
        {"event": {"event_type": "complete", "delta": "", "stop_reason": "end_of_turn"}},
    ),
    (inference.ChatCompletionRequest, {"model": "m", "messages": [USER, ASSISTANT]}),
    (inference.ChatCompletionResponse, {"completion_message": ASSISTANT}),
    (
        inference.CompletionRequest,
        {"model": "m", "content": ["a", {"image": {"uri": "http://x/y.png"}}], "logprobs": {}},
    ),
    (inference.CompletionResponse, {"completion_message": ASSISTANT, "logprobs": [{"logprobs_by_token": {"a": -0.1}}]}),
    (inference.CompletionResponseStreamChunk, {"delta": "x", "stop_reason": "out_of_tokens"}),
    (inference.BatchCompletionRequest, {"model": "m", "content_batch": ["a", "b"]}),
    (inference.BatchCompletionResponse, {"completion_message_batch": [ASSISTANT]}),
    (inference.BatchChatCompletionRequest, {"model": "m", "messages_batch": [[USER], [USER]]}),
    (inference.BatchChatCompletionResponse, {"completion_message_batch": []}),
    (inference.EmbeddingsRequest, {"model": "m", "contents": ["a", ["b", "c"]]}),
    (inference.EmbeddingsResponse, {"embeddings": [[0.1, 0.2], [0.3, 0.4]]}),
    (memory.MemoryBankDocument, {"document_id": "d", "content": "text", "mime_type": "text/plain"}),
    (memory.MemoryBankDocument, {"document_id": "d", "content": {"uri": "data:text/plain;base64,aGk="}}),
    (memory.Chunk, {"content": "c", "token_count": 3, "document_id": "d"}),
    (
        memory.QueryDocumentsResponse,
        {"chunks": [{"content": "c", "token_count": 3, "document_id": "d"}], "scores": [0.5]},
    ),
    (memory.InsertDocumentsRequest, {"bank_id": "b", "documents": [{"document_id": "d", "content": "x"}]}),
    (memory.QueryDocumentsRequest, {"bank_id": "b", "query": ["q1", "q2"], "params": {"max_chunks": 5}}),
    (safety.SafetyViolation, {"violation_level": "error", "metadata": {"violation_type": "S1"}}),
    (safety.RunShieldResponse, {"violation": {"violation_level": "warn", "user_message": "no"}}),
    (safety.RunShieldResponse, {}),
    (safety.RunShieldRequest, {"shield_type": "llama_guard", "messages": [USER], "params": {}}),
    (inspect_api.ProviderInfo, {"provider_id": "p", "provider_type": "remote::ollama"}),
    (inspect_api.RouteInfo, {"route": "/health", "method": "GET", "provider_types": []}),
    (inspect_api.HealthInfo, {"status": "OK"}),
    (
        telemetry.Span,
        {"span_id": "s", "trace_id": "t", "name": "n", "start_time": NOW, "attributes": {"k": 1}},
    ),
    (telemetry.Trace, {"trace_id": "t", "root_span_id": "s", "start_time": NOW, "end_time": NOW}),
    (
        telemetry.UnstructuredLogEvent,
        {"trace_id": "t", "span_id": "s", "timestamp": NOW, "message": "m", "severity": "info"},
    ),
    (
        telemetry.MetricEvent,
        {"trace_id": "t", "span_id": "s", "timestamp": NOW, "metric": "tok", "value": 3, "unit": "tokens"},
    ),
    (
        telemetry.StructuredLogEvent,
        {"trace_id": "t", "span_id": "s", "timestamp": NOW, "payload": {"type": "span_end", "status": "ok"}},
    ),
    (telemetry.SpanStartPayload, {"name": "n", "parent_span_id": "p"}),
    (telemetry.SpanEndPayload, {"status": "error"}),
    (
        telemetry.LogEventRequest,
        {"event": {"type": "metric", "trace_id": "t", "span_id": "s", "timestamp": NOW, "metric": "x", "value": 1.5, "unit": "s"}},
    ),
    (RestAPIExecutionConfig, {"url": {"uri": "http://localhost/x"}, "method": "POST", "headers": {"a": "b"}}),
    (Checkpoint, {"iters": 10, "path": {"uri": "file:///tmp/ckpt"}, "epoch": 1}),
]


@pytest.mark.parametrize("cls,payload", SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_round_trip(cls, payload):
    obj = cls.model_validate(payload)
    dumped = obj.model_dump(mode="json")
    # Everything the caller sent survives, and the dump validates back to an equal object.
    for key in payload:
        assert key in dumped
    assert cls.model_validate(dumped) == obj
    assert cls.model_validate_json(obj.model_dump_json()) == obj


def test_every_defined_model_is_exercised():
    sampled = {cls.__name__ for cls, _ in SAMPLES}
    # Base classes that only contribute fields to the concrete ones above.
    bases = {"CommonDef", "EventCommon"}
    missing = set(our_models()) - sampled - bases
    assert not missing, f"no sample for {sorted(missing)}"


def test_values_are_typed():
    req = ChatCompletionRequest.model_validate({"model": "m", "messages": [USER, ASSISTANT]})
    assert isinstance(req.messages[0], inference.UserMessage)
    assert isinstance(req.messages[1], inference.CompletionMessage)
    assert req.messages[1].tool_calls[0].tool_name == "get_weather"
    chunk = ChatCompletionResponseStreamChunk.model_validate(
        {"event": {"event_type": "progress", "delta": {"content": TOOL_CALL, "parse_status": "success"}}}
    )
    assert isinstance(chunk.event.delta, inference.ToolCallDelta)
    assert isinstance(chunk.event.delta.content, inference.ToolCall)
    assert chunk.event.event_type is inference.ChatCompletionResponseEventType.progress
    doc = memory.MemoryBankDocument.model_validate({"document_id": "d", "content": {"uri": "http://a/b.txt"}})
    assert isinstance(doc.content, memory.URL)
    span = telemetry.Span.model_validate(SAMPLES[[c for c, _ in SAMPLES].index(telemetry.Span)][1])
    assert span.start_time == datetime(2024, 10, 10, 12, 0, 0)
    metric = telemetry.MetricEvent(trace_id="t", span_id="s", timestamp=NOW, metric="m", value=2, unit="u")
    assert metric.value == 2 and isinstance(metric.value, int)


def test_missing_and_wrong_fields_are_named():
    with pytest.raises(ValidationError) as err:
        ChatCompletionRequest.model_validate({"messages": [USER]})
    assert err.value.errors()[0]["loc"] == ("model",)
    with pytest.raises(ValidationError) as err:
        ChatCompletionRequest.model_validate({"model": "m", "messages": [USER], "tool_choice": "sometimes"})
    assert err.value.errors()[0]["loc"] == ("tool_choice",)
    with pytest.raises(ValidationError) as err:
        memory.InsertDocumentsRequest.model_validate({"bank_id": "b", "documents": [{"content": "x"}]})
    assert err.value.errors()[0]["loc"] == ("documents", 0, "document_id")
    with pytest.raises(ValidationError):
        safety.SafetyViolation.model_validate({"violation_level": "fatal"})
    with pytest.raises(ValidationError):
        models.ModelDefWithProvider.model_validate({"identifier": "m", "llama_model": "L"})


# ---------------------------------------------------------------------------------------------
# Discriminated unions

BANKS = {
    "vector": {"identifier": "b", "type": "vector", "embedding_model": "e", "chunk_size_in_tokens": 8},
    "keyvalue": {"identifier": "b", "type": "keyvalue"},
    "keyword": {"identifier": "b", "type": "keyword"},
    "graph": {"identifier": "b", "type": "graph"},
}
BANK_CLASSES = {
    "vector": memory_banks.VectorMemoryBankDef,
    "keyvalue": memory_banks.KeyValueMemoryBankDef,
    "keyword": memory_banks.KeywordMemoryBankDef,
    "graph": memory_banks.GraphMemoryBankDef,
}
COMMON_EVENT = {"trace_id": "t", "span_id": "s", "timestamp": NOW}
EVENTS = {
    "unstructured_log": ({**COMMON_EVENT, "message": "m", "severity": "warn"}, telemetry.UnstructuredLogEvent),
    "metric": ({**COMMON_EVENT, "metric": "m", "value": 1, "unit": "u"}, telemetry.MetricEvent),
    "structured_log": (
        {**COMMON_EVENT, "payload": {"type": "span_start", "name": "root"}},
        telemetry.StructuredLogEvent,
    ),
}


@pytest.mark.parametrize("tag", sorted(BANKS))
def test_memory_bank_union_accepts_each_kind(tag):
    bank = TypeAdapter(memory_banks.MemoryBankDef).validate_python(BANKS[tag])
    assert type(bank) is BANK_CLASSES[tag]
    assert bank.type == tag
    assert bank.provider_id == ""
    req = memory_banks.RegisterMemoryBankRequest.model_validate_json(json.dumps({"memory_bank": BANKS[tag]}))
    assert type(req.memory_bank) is BANK_CLASSES[tag]
    assert req.model_dump(mode="json")["memory_bank"]["type"] == tag


def test_memory_bank_union_rejects_unknown_kind():
    with pytest.raises(ValidationError) as err:
        TypeAdapter(memory_banks.MemoryBankDef).validate_python({"identifier": "b", "type": "sql"})
    assert err.value.errors()[0]["type"] == "union_tag_invalid"
    with pytest.raises(ValidationError):
        memory_banks.RegisterMemoryBankRequest.model_validate({"memory_bank": {"identifier": "b", "type": "sql"}})


def test_memory_bank_without_type_is_vector_when_it_has_an_embedding_model():
    body = {"identifier": "b", "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 512,
            "overlap_size_in_tokens": 64, "provider_id": "meta-reference"}
    req = memory_banks.RegisterMemoryBankRequest.model_validate({"memory_bank": body})
    assert isinstance(req.memory_bank, VectorMemoryBankDef)
    assert req.memory_bank.overlap_size_in_tokens == 64
    assert "type" not in body  # the caller's dict is left as it was
    # Without an embedding model there is nothing to infer the kind from.
    with pytest.raises(ValidationError) as err:
        TypeAdapter(memory_banks.MemoryBankDefWithProvider).validate_python({"identifier": "b"})
    assert err.value.errors()[0]["type"] == "union_tag_not_found"


def test_memory_bank_variants_reject_a_foreign_tag():
    with pytest.raises(ValidationError):
        memory_banks.GraphMemoryBankDef.model_validate({"identifier": "b", "type": "vector"})
    with pytest.raises(ValidationError):
        VectorMemoryBankDef.model_validate({"identifier": "b", "embedding_model": "e"})


@pytest.mark.parametrize("tag", sorted(EVENTS))
def test_event_union_accepts_each_kind(tag):
    payload, cls = EVENTS[tag]
    req = telemetry.LogEventRequest.model_validate({"event": {**payload, "type": tag}})
    assert type(req.event) is cls
    assert type(TypeAdapter(telemetry.Event).validate_python({**payload, "type": tag})) is cls


def test_event_union_rejects_unknown_and_missing_kind():
    with pytest.raises(ValidationError):
        telemetry.LogEventRequest.model_validate({"event": {**COMMON_EVENT, "type": "trace", "message": "m"}})
    with pytest.raises(ValidationError):
        telemetry.LogEventRequest.model_validate({"event": {**COMMON_EVENT, "message": "m", "severity": "info"}})


def test_structured_payload_union():
    adapter = TypeAdapter(telemetry.StructuredLogPayload)
    assert type(adapter.validate_python({"type": "span_start", "name": "n"})) is telemetry.SpanStartPayload
    end = adapter.validate_python({"type": "span_end", "status": "ok"})
    assert type(end) is telemetry.SpanEndPayload and end.status is telemetry.SpanStatus.OK
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "span_middle", "name": "n"})


def test_quantization_union():
    adapter = TypeAdapter(inference.QuantizationConfig)
    assert type(adapter.validate_python({"type": "fp8"})) is inference.Fp8QuantizationConfig
    assert type(adapter.validate_python({"type": "bf16"})) is inference.Bf16QuantizationConfig
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "int4"})


@pytest.mark.parametrize(
    "message,cls",
    [
        ({"role": "user", "content": "hi"}, "UserMessage"),
        ({"role": "system", "content": "be brief"}, "SystemMessage"),
        ({"role": "ipython", "call_id": "c", "tool_name": "brave_search", "content": "r"}, "ToolResponseMessage"),
        (ASSISTANT, "CompletionMessage"),
    ],
)
def test_message_union_in_requests(message, cls):
    req = safety.RunShieldRequest.model_validate({"shield_type": "s", "messages": [message]})
    assert type(req.messages[0]).__name__ == cls


def test_message_union_rejects_unknown_role():
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "robot", "content": "x"}]})


# ---------------------------------------------------------------------------------------------
# Defaults


def test_sampling_params_defaults_match_spec(spec):
    params = ChatCompletionRequest(model="m", messages=[USER]).sampling_params
    dumped = params.model_dump(mode="json")
    for name, prop in spec["components"]["schemas"]["SamplingParams"]["properties"].items():
        assert dumped[name] == prop["default"], name
    assert dumped == {"strategy": "greedy", "temperature": 0.0, "top_p": 0.95, "top_k": 0,
                      "max_tokens": 0, "repetition_penalty": 1.0}


def test_request_defaults(spec):
    req = ChatCompletionRequest(model="m", messages=[USER])
    assert req.tool_choice is inference.ToolChoice.auto
    assert req.tool_prompt_format is inference.ToolPromptFormat.json
    assert req.tools == [] and req.stream is False and req.logprobs is None
    # Each request gets its own default objects.
    other = ChatCompletionRequest(model="m", messages=[USER])
    assert req.tools is not other.tools and req.sampling_params is not other.sampling_params
    batch = inference.BatchChatCompletionRequest(model="m", messages_batch=[])
    assert batch.tool_choice is inference.ToolChoice.auto and batch.tools == []
    assert batch.tool_prompt_format is inference.ToolPromptFormat.json
    assert inference.CompletionRequest(model="m", content="x").stream is False
    spec_top_k = spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]["logprobs"]["properties"]["top_k"]
    assert inference.LogProbConfig().top_k == spec_top_k["default"] == 0
    assert memory.InsertDocumentsRequest(bank_id="b", documents=[]).ttl_seconds is None
    assert memory.MemoryBankDocument(document_id="d", content="x").metadata == {}
    assert models.ModelDef(identifier="m", llama_model="L").metadata == {}
    assert shields.ShieldDef(identifier="s", type="t").params == {}
    assert safety.RunShieldResponse().violation is None
    assert VectorMemoryBankDef(identifier="b", embedding_model="e", chunk_size_in_tokens=1).overlap_size_in_tokens is None


def test_tag_defaults_match_spec(spec):
    schemas = spec["components"]["schemas"]
    classes = {**our_models()}
    for name, cls in classes.items():
        prop = schemas.get(name, {}).get("properties", {}).get("type", {})
        if "const" in prop:
            assert cls.model_fields["type"].default == prop["const"] == prop["default"], name


# ---------------------------------------------------------------------------------------------
# Agreement with the OpenAPI document


def test_model_fields_match_spec(spec):
    schemas = spec["components"]["schemas"]
    checked = 0
    for name, cls in our_models().items():
        schema = schemas.get(name)
        if schema is None or "properties" not in schema:
            continue
        checked += 1
        assert set(cls.model_fields) == set(schema["properties"]), name
        ours_required = {f for f, info in cls.model_fields.items() if info.is_required()}
        # The document also lists defaulted fields as required; ours must never demand more.
        assert ours_required <= set(schema.get("required", [])), name
    # Everything but the few types the document only inlines or does not use.
    assert checked == 41


def test_request_schemas_of_our_apis_exist(spec):
    wanted = {
        "ChatCompletionRequest", "CompletionRequest", "EmbeddingsRequest", "BatchChatCompletionRequest",
        "BatchCompletionRequest", "RegisterModelRequest", "RegisterShieldRequest",
        "RegisterMemoryBankRequest", "InsertDocumentsRequest", "QueryDocumentsRequest",
        "RunShieldRequest", "LogEventRequest",
    }
    assert wanted <= set(spec["components"]["schemas"])
    assert wanted <= set(our_models())


def test_routes_match_spec(spec):
    spec_routes = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op["tags"][0] in PROTOCOLS:
                spec_routes[(method.upper(), path)] = op
    ours = {}
    for tag, protocol in PROTOCOLS.items():
        for name, fn, meta in webmethods(protocol):
            assert inspect.iscoroutinefunction(fn), name
            ours[(meta.method, meta.route)] = (tag, fn)
    assert set(ours) == set(spec_routes)
    for key, (tag, fn) in ours.items():
        op = spec_routes[key]
        assert op["tags"] == [tag]
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
        body_ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if body_ref:
            body = spec["components"]["schemas"][body_ref["$ref"].rsplit("/", 1)[1]]
            assert set(params) == set(body["properties"]) | set(query), key
        else:
            assert params == query, key


def test_protocol_methods_match_request_classes():
    pairs = [
        (inference.Inference.chat_completion, inference.ChatCompletionRequest),
        (inference.Inference.completion, inference.CompletionRequest),
        (inference.Inference.embeddings, inference.EmbeddingsRequest),
        (batch_inference.BatchInference.batch_completion, batch_inference.BatchCompletionRequest),
        (batch_inference.BatchInference.batch_chat_completion, batch_inference.BatchChatCompletionRequest),
        (models.Models.register_model, models.RegisterModelRequest),
        (shields.Shields.register_shield, shields.RegisterShieldRequest),
        (memory_banks.MemoryBanks.register_memory_bank, memory_banks.RegisterMemoryBankRequest),
        (memory.Memory.insert_documents, memory.InsertDocumentsRequest),
        (memory.Memory.query_documents, memory.QueryDocumentsRequest),
        (safety.Safety.run_shield, safety.RunShieldRequest),
        (telemetry.Telemetry.log_event, telemetry.LogEventRequest),
    ]
    for fn, cls in pairs:
        sig = inspect.signature(fn)
        assert [p for p in sig.parameters if p != "self"] == list(cls.model_fields), cls.__name__
        for name, param in sig.parameters.items():
            if name == "self":
                continue
            field = cls.model_fields[name]
            # Optional-with-default in the method means optional in the body, and vice versa.
            assert (param.default is inspect.Parameter.empty) == field.is_required(), (cls.__name__, name)


def test_protocols_are_runtime_checkable():
    class Health:
        async def list_providers(self):
            return {}

        async def list_routes(self):
            return {}

        async def health(self):
            return inspect_api.HealthInfo(status="OK")

    assert isinstance(Health(), inspect_api.Inspect)
    assert not isinstance(object(), models.Models)


# ---------------------------------------------------------------------------------------------
# Re-exports and import cost


def test_star_imports_expose_upstream_names():
    ns = {}
    exec("from llama_stack.apis.inference import *", ns)
    for name in ["UserMessage", "SamplingParams", "ToolDefinition", "StopReason", "URL", "ImageMedia",
                 "ModelDef", "ModelDefWithProvider", "ChatCompletionRequest", "Inference", "LogProbConfig"]:
        assert name in ns, name
    ns = {}
    exec("from llama_stack.apis.memory import *", ns)
    assert {"MemoryBankDocument", "VectorMemoryBankDef", "MemoryBankDef", "InterleavedTextMedia"} <= set(ns)
    ns = {}
    exec("from llama_stack.apis.safety import *", ns)
    assert {"SafetyViolation", "ShieldDef", "Message"} <= set(ns)
    ns = {}
    exec("from llama_stack.apis.batch_inference import *", ns)
    assert ns["BatchCompletionRequest"] is inference.BatchCompletionRequest
    assert {"BatchInference", "ChatCompletionRequest"} <= set(ns)


def test_importing_the_package_loads_no_api():
    code = (
        "import sys, llama_stack; "
        "print(sorted(m for m in sys.modules if m.startswith(('llama_stack.', 'pydantic', 'llama_models'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT / "python")})
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Distribution config


def test_api_enum():
    assert [a.value for a in Api] == ["inference", "safety", "agents", "memory", "telemetry", "models",
                                      "shields", "memory_banks", "inspect"]
    from llama_stack.providers.datatypes import Api as ProviderApi

    assert ProviderApi is Api


def test_minimal_run_config():
    before = datetime.now()
    cfg = StackRunConfig(image_name="x", apis=[], providers={})
    assert cfg.version == "2"
    assert before <= cfg.built_at <= datetime.now()
    assert cfg.models == [] and cfg.shields == [] and cfg.memory_banks == []
    assert cfg.metadata_store is None and cfg.docker_image is None and cfg.conda_env is None
    with pytest.raises(ValidationError) as err:
        StackRunConfig(image_name="x")
    assert err.value.errors()[0]["loc"] == ("providers",)


def test_run_config_as_written_in_yaml():
    yaml = pytest.importorskip("yaml")
    text = """
version: 2
built_at: '2024-10-10T12:00:00'
image_name: local
conda_env: local
apis: [inference, safety, memory, models, shields, memory_banks]
providers:
  inference:
  - provider_id: tgi-chat
    provider_type: remote::tgi
    config: {url: 'http://127.0.0.1:5009'}
  safety:
  - provider_id: meta-reference
    provider_type: meta-reference
    config: {llama_guard_shield: null, enable_prompt_guard: false}
models:
- {identifier: Llama3.1-8B-Instruct, llama_model: Llama3.1-8B-Instruct, provider_id: tgi-chat}
shields:
- {identifier: llama_guard, type: llama_guard, provider_id: meta-reference}
memory_banks:
- {identifier: docs, embedding_model: all-MiniLM-L6-v2, chunk_size_in_tokens: 512}
- {identifier: kv, type: keyvalue, provider_id: faiss}
metadata_store: {type: sqlite, db_path: /tmp/registry.db}
"""
    cfg = StackRunConfig.model_validate(yaml.safe_load(text))
    assert cfg.version == "2"
    assert cfg.built_at == datetime(2024, 10, 10, 12, 0, 0)
    assert isinstance(cfg.providers["inference"][0], Provider)
    assert cfg.providers["inference"][0].config == {"url": "http://127.0.0.1:5009"}
    assert cfg.models[0].provider_id == "tgi-chat"
    assert cfg.shields[0].type == "llama_guard"
    assert isinstance(cfg.memory_banks[0], VectorMemoryBankDef)
    assert type(cfg.memory_banks[1]).__name__ == "KeyValueMemoryBankDef"
    assert cfg.metadata_store == {"type": "sqlite", "db_path": "/tmp/registry.db"}
    again = StackRunConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg


def test_run_config_errors_name_the_field():
    with pytest.raises(ValidationError) as err:
        StackRunConfig.model_validate(
            {"image_name": "x", "providers": {"inference": [{"provider_id": "p", "config": {}}]}}
        )
    assert err.value.errors()[0]["loc"] == ("providers", "inference", 0, "provider_type")
    with pytest.raises(ValidationError) as err:
        StackRunConfig.model_validate(
            {"image_name": "x", "providers": {}, "memory_banks": [{"identifier": "b", "type": "tree"}]}
        )
    assert err.value.errors()[0]["loc"][:2] == ("memory_banks", 0)
    with pytest.raises(ValidationError):
        Provider(provider_id="p", provider_type="t")


def test_build_config_and_distribution_spec():
    from llama_stack.distribution.datatypes import BuildConfig, DistributionSpec

    spec = DistributionSpec(providers={"inference": "remote::ollama", "memory": ["meta-reference", "remote::chromadb"]})
    assert spec.description == "" and spec.docker_image is None
    build = BuildConfig(name="local", distribution_spec=spec)
    assert build.version == "2" and build.image_type == "conda"
    assert BuildConfig.model_validate(build.model_dump()) == build
    with pytest.raises(ValidationError):
        BuildConfig(name="x")


def test_provider_specs():
    from llama_stack.providers.datatypes import (
        AdapterSpec,
        InlineProviderSpec,
        RemoteProviderConfig,
        is_passthrough,
        remote_provider_spec,
    )

    plain = remote_provider_spec(Api.inference)
    assert plain.provider_type == "remote"
    assert plain.module == "llama_stack.apis.inference.client"
    assert plain.config_class == "llama_stack.distribution.datatypes.RemoteProviderConfig"
    assert is_passthrough(plain) and plain.pip_packages == [] and plain.docker_image is None
    adapter = AdapterSpec(adapter_type="ollama", module="m.ollama", pip_packages=["ollama"], config_class="m.Cfg")
    wrapped = remote_provider_spec(Api.inference, adapter)
    assert wrapped.provider_type == "remote::ollama" and wrapped.config_class == "m.Cfg"
    assert wrapped.module == "m.ollama" and wrapped.pip_packages == ["ollama"] and not is_passthrough(wrapped)
    inline = InlineProviderSpec(api="memory", provider_type="meta-reference", config_class="c", module="m",
                                api_dependencies=["inference"])
    assert inline.api is Api.memory and inline.api_dependencies == [Api.inference]
    assert not is_passthrough(inline)
    assert RemoteProviderConfig(port=5000).url == "http://localhost:5000"
    with pytest.raises(ValidationError):
        InlineProviderSpec(api="vision", provider_type="x", config_class="c", module="m")


def test_common_types():
    cfg = RestAPIExecutionConfig.model_validate({"url": {"uri": "http://h/p"}, "method": "GET"})
    assert cfg.method is RestAPIMethod.GET and cfg.params is None and cfg.body is None
    with pytest.raises(ValidationError):
        RestAPIExecutionConfig.model_validate({"url": {"uri": "http://h/p"}, "method": "PATCH"})
    assert Checkpoint(iters=1, path={"uri": "file:///c"}, epoch=0).path.uri == "file:///c"

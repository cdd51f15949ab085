"""Every schema of the wire contract, through pydantic and through the Rust core.

For each component schema of the OpenAPI spec, instances are generated from the spec itself (one
per union branch at each level, optional fields present and absent, every enum value). Each one
is read into our pydantic class of the same name, written back as JSON, checked against the spec,
sent through ``llama_stack._core.roundtrip`` (Rust reads it into its own type and writes it
again), and read back into pydantic: the result must equal what we started from.

Places where the spec says something that no 0.0.41 server or client actually does are handled
explicitly below (``wire_spec`` and ``generation_spec``), each with the reason.
"""

import copy
import importlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jsonschema
import pytest
from pydantic import TypeAdapter
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "llama-stack-spec-v0.0.41.json"
SPEC_URI = "urn:llama-stack-spec"
REF_PREFIX = "#/components/schemas/"

LLAMA_MODELS = "llama_models.llama3.api.datatypes"

# Where the pydantic class of each spec schema lives. A class is looked up by the schema's name.
SCHEMA_HOMES: Dict[str, List[str]] = {
    LLAMA_MODELS: [
        "BuiltinTool", "CompletionMessage", "ImageMedia", "SamplingParams", "SamplingStrategy",
        "StopReason", "SystemMessage", "TokenLogProbs", "ToolCall", "ToolChoice", "ToolDefinition",
        "ToolParamDefinition", "ToolPromptFormat", "ToolResponse", "ToolResponseMessage", "URL",
        "UserMessage",
    ],
    "llama_stack.apis.agents": [
        "AgentConfig", "AgentCreateResponse", "AgentSessionCreateResponse", "AgentStepResponse",
        "AgentTurnResponseEvent", "AgentTurnResponseStepCompletePayload",
        "AgentTurnResponseStepProgressPayload", "AgentTurnResponseStepStartPayload",
        "AgentTurnResponseStreamChunk", "AgentTurnResponseTurnCompletePayload",
        "AgentTurnResponseTurnStartPayload", "Attachment", "CodeInterpreterToolDefinition",
        "CreateAgentRequest", "CreateAgentSessionRequest", "CreateAgentTurnRequest",
        "DeleteAgentsRequest", "DeleteAgentsSessionRequest", "FunctionCallToolDefinition",
        "GetAgentsSessionRequest", "InferenceStep", "MemoryRetrievalStep", "MemoryToolDefinition",
        "PhotogenToolDefinition", "SearchToolDefinition", "Session", "ShieldCallStep",
        "ToolExecutionStep", "Turn", "WolframAlphaToolDefinition",
    ],
    "llama_stack.apis.inference": [
        "ChatCompletionRequest", "ChatCompletionResponse", "ChatCompletionResponseEvent",
        "ChatCompletionResponseEventType", "ChatCompletionResponseStreamChunk", "CompletionRequest",
        "CompletionResponse", "CompletionResponseStreamChunk", "EmbeddingsRequest",
        "EmbeddingsResponse", "ToolCallDelta", "ToolCallParseStatus",
    ],
    "llama_stack.apis.batch_inference": [
        "BatchChatCompletionRequest", "BatchChatCompletionResponse", "BatchCompletionRequest",
        "BatchCompletionResponse",
    ],
    "llama_stack.apis.models": ["ModelDefWithProvider", "RegisterModelRequest"],
    "llama_stack.apis.shields": ["RegisterShieldRequest", "ShieldDefWithProvider"],
    "llama_stack.apis.memory_banks": [
        "GraphMemoryBankDef", "KeyValueMemoryBankDef", "KeywordMemoryBankDef",
        "RegisterMemoryBankRequest", "VectorMemoryBankDef",
    ],
    "llama_stack.apis.memory": [
        "InsertDocumentsRequest", "MemoryBankDocument", "QueryDocumentsRequest",
        "QueryDocumentsResponse",
    ],
    "llama_stack.apis.safety": ["RunShieldRequest", "RunShieldResponse", "SafetyViolation", "ViolationLevel"],
    "llama_stack.apis.inspect": ["HealthInfo", "ProviderInfo", "RouteInfo"],
    "llama_stack.apis.telemetry": [
        "LogEventRequest", "LogSeverity", "MetricEvent", "SpanEndPayload", "SpanStartPayload",
        "SpanStatus", "StructuredLogEvent", "Trace", "UnstructuredLogEvent",
    ],
    "llama_stack.apis.common.deployment_types": ["RestAPIExecutionConfig", "RestAPIMethod"],
    "llama_stack.apis.common.training_types": ["Checkpoint"],
    "llama_stack.apis.datasets": [
        "CreateDatasetRequest", "DeleteDatasetRequest", "TrainEvalDataset", "TrainEvalDatasetColumnType",
    ],
    "llama_stack.apis.evaluations": [
        "CancelEvaluationJobRequest", "EvaluateQuestionAnsweringRequest",
        "EvaluateSummarizationRequest", "EvaluateTextGenerationRequest", "EvaluationJob",
        "EvaluationJobArtifactsResponse", "EvaluationJobLogStream", "EvaluationJobStatusResponse",
    ],
    "llama_stack.apis.post_training": [
        "CancelTrainingJobRequest", "DPOAlignmentConfig", "DoraFinetuningConfig",
        "FinetuningAlgorithm", "LoraFinetuningConfig", "OptimizerConfig", "PostTrainingJob",
        "PostTrainingJobArtifactsResponse", "PostTrainingJobLogStream", "PostTrainingJobStatus",
        "PostTrainingJobStatusResponse", "PreferenceOptimizeRequest", "QLoraFinetuningConfig",
        "RLHFAlgorithm", "SupervisedFineTuneRequest", "TrainingConfig",
    ],
    "llama_stack.apis.reward_scoring": [
        "DialogGenerations", "RewardScoreRequest", "RewardScoringResponse",
        "ScoredDialogGenerations", "ScoredMessage",
    ],
    "llama_stack.apis.synthetic_data_generation": [
        "SyntheticDataGenerateRequest", "SyntheticDataGenerationResponse",
    ],
}
HOME_OF = {name: module for module, names in SCHEMA_HOMES.items() for name in names}

# A schema reached through a `$ref` contributes at most this many variants to its container:
# enough for one instance per branch of the widest union (7), without the instance count
# multiplying at every level. Each schema's own variants are all exercised in its own test.
NESTED_VARIANTS = 8
# Upper bound on the instances tried for one schema.
MAX_INSTANCES = 150


@lru_cache(maxsize=None)
def spec() -> Dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def schemas() -> Dict[str, Any]:
    return spec()["components"]["schemas"]


def pydantic_class(name: str) -> Any:
    module = HOME_OF.get(name)
    assert module is not None, f"spec schema `{name}` has no entry in SCHEMA_HOMES"
    cls = getattr(importlib.import_module(module), name, None)
    assert cls is not None, f"`{module}` has no class `{name}` for the spec schema of that name"
    return cls


@lru_cache(maxsize=None)
def adapter(name: str) -> TypeAdapter:
    return TypeAdapter(pydantic_class(name))


# What upstream's server puts on the wire for `URL`: pydantic serialises the model `URL(uri=...)`
# as an object, although the spec (generated from the type annotations) calls it a plain string.
URL_OBJECT = {
    "type": "object",
    "properties": {"uri": {"type": "string", "pattern": "^(https?://|file://|data:)"}},
    "required": ["uri"],
    "additionalProperties": False,
}


def _map_schema(node: Any, fn) -> Any:
    if isinstance(node, dict):
        return fn({k: _map_schema(v, fn) for k, v in node.items()})
    if isinstance(node, list):
        return [_map_schema(v, fn) for v in node]
    return node


def _one_of_as_any_of(node: Dict[str, Any]) -> Dict[str, Any]:
    # The spec writes every Python Union as `oneOf`, including unions whose branches overlap:
    # `int | float` (an integer is also a number), `BuiltinTool | str` ("brave_search" is both),
    # three identical LoRA configs. "Exactly one branch" is unsatisfiable for valid payloads of
    # those, so the union is read as pydantic reads it: at least one branch.
    if "oneOf" in node:
        node = dict(node)
        node["anyOf"] = node.pop("oneOf")
    return node


@lru_cache(maxsize=None)
def wire_spec() -> Dict[str, Any]:
    """The spec as the check of produced JSON uses it."""
    doc = copy.deepcopy(spec())
    comps = doc["components"]["schemas"]
    # URL only: accept the object form too (see URL_OBJECT), and nowhere else relax the spec.
    comps["URL"] = {"anyOf": [comps["URL"], URL_OBJECT]}
    return _map_schema(doc, _one_of_as_any_of)


@lru_cache(maxsize=None)
def generation_spec() -> Dict[str, Any]:
    """The spec as the instance generator reads it."""
    doc = copy.deepcopy(spec())
    comps = doc["components"]["schemas"]
    # pydantic reads `URL` only as an object (see URL_OBJECT).
    comps["URL"] = URL_OBJECT
    # `ImageMedia.image` may be an in-memory PIL image in Python; the spec describes one as an
    # object with `format` fields, but no JSON can be read back into a PIL image, so over the
    # wire only the URL branch is usable.
    image = comps["ImageMedia"]["properties"]["image"]
    image["oneOf"] = [b for b in image["oneOf"] if b.get("$ref") == REF_PREFIX + "URL"]
    # Schemas the spec generator left empty (a `description` and nothing else: `Checkpoint`, whose
    # custom schema annotation replaced its fields) are generated from the pydantic class.
    for name, schema in comps.items():
        if not set(schema) - {"description", "title"}:
            own = pydantic_class(name).model_json_schema(ref_template=REF_PREFIX + "{model}")
            own.pop("$defs", None)
            comps[name] = own
    return doc


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _dedup(values: List[Any]) -> List[Any]:
    seen, out = set(), []
    for v in values:
        k = _key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _round_robin(groups: List[List[Any]]) -> List[Any]:
    """First item of every group, then every second item, and so on: each branch comes first."""
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


FREE_OBJECT = {"text": "a", "count": 2, "ratio": 0.5, "flag": True, "nothing": None, "list": [1, "b"], "map": {"k": "v"}}
FREE_ARRAY = ["a", 2, 0.5, False, None, {"k": [1]}]
DATE_TIMES = [
    "2024-10-10T15:30:00Z",
    # Upstream stamps steps and turns with naive `datetime.now()`: no offset on the wire.
    "2024-10-09T08:05:03.123456",
    "2024-10-10T17:30:00.5+02:00",
]

# Strings for the patterns the spec uses (only URL has one): each scheme it allows.
PATTERN_SAMPLES = {
    "^(https?://|file://|data:)": ["https://example.com/doc.txt", "file:///tmp/table.csv", "data:text/plain;base64,aGVsbG8="],
}


class Generator:
    """Walks a spec schema and lists JSON instances of it; the first instance is the fullest."""

    def __init__(self, doc: Dict[str, Any]):
        self.schemas = doc["components"]["schemas"]
        self.ref_cache: Dict[str, List[Any]] = {}
        self.active: set = set()

    def of_schema(self, name: str) -> List[Any]:
        return self.walk(self.schemas[name], name)

    def walk(self, node: Dict[str, Any], label: str) -> List[Any]:
        if "$ref" in node:
            return self.ref(node["$ref"])
        for union in ("oneOf", "anyOf"):
            if union in node:
                return _dedup(_round_robin([self.walk(b, label) for b in node[union]]))
        if "const" in node:
            return [node["const"]]
        if "enum" in node:
            return list(node["enum"])
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            return self.object(node, label)
        if kind == "array":
            return self.array(node, label)
        if kind == "string":
            if node.get("format") == "date-time":
                return list(DATE_TIMES)
            if "pattern" in node:
                assert node["pattern"] in PATTERN_SAMPLES, f"no sample strings for pattern {node['pattern']!r}"
                return list(PATTERN_SAMPLES[node["pattern"]])
            return [f"{label}-text"]
        if kind == "integer":
            return [7]
        if kind == "number":
            # An integer too: a float field must accept it and keep the value.
            return [0.25, 3]
        if kind == "boolean":
            return [True, False]
        if kind == "null":
            return [None]
        # No constraint at all: any JSON value.
        return ["free", 1, FREE_OBJECT]

    def ref(self, ref: str) -> List[Any]:
        assert ref.startswith(REF_PREFIX), ref
        name = ref[len(REF_PREFIX):]
        if name not in self.ref_cache:
            assert name not in self.active, f"recursive schema through `{name}`"
            self.active.add(name)
            self.ref_cache[name] = self.walk(self.schemas[name], name)[:NESTED_VARIANTS]
            self.active.discard(name)
        return self.ref_cache[name]

    def object(self, node: Dict[str, Any], label: str) -> List[Any]:
        props = node.get("properties", {})
        if props:
            required = set(node.get("required", []))
            options = {k: self.walk(v, k) for k, v in props.items()}
            full = {k: v[0] for k, v in options.items()}
            minimal = {k: v[0] for k, v in options.items() if k in required}
            out = [full, minimal]
            for k, values in options.items():
                out.extend({**full, k: v} for v in values[1:])
                if k not in required:
                    out.extend({**minimal, k: v} for v in values[:1])
            return _dedup(out)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            values = self.walk(extra, label)
            # One map holding every variant, and the empty map.
            return [{f"{label}{i}": v for i, v in enumerate(values)}, {}]
        return [FREE_OBJECT, {}]

    def array(self, node: Dict[str, Any], label: str) -> List[Any]:
        items = node.get("items")
        if not items:
            return [FREE_ARRAY, []]
        values = self.walk(items, label)
        out = [[v] for v in values]
        if len(values) > 1:
            out.append(values[:2])  # order must survive
        out.append([])
        return out


def _spread(values: List[Any], limit: int) -> List[Any]:
    """At most `limit` values, picked evenly so later fields keep some of their variants."""
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit)]


@lru_cache(maxsize=None)
def instances(name: str) -> List[Any]:
    return _spread(Generator(generation_spec()).of_schema(name), MAX_INSTANCES)


@lru_cache(maxsize=None)
def wire_validator(name: str) -> jsonschema.protocols.Validator:
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(wire_spec(), default_specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": f"{SPEC_URI}{REF_PREFIX}{name}"}, registry=registry)


def check_wire(name: str, value: Any, what: str) -> None:
    errors = sorted(wire_validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5]]
        pytest.fail(f"{what} does not match the spec schema `{name}`:\n" + "\n".join(lines) + f"\n{_key(value)[:2000]}")


def same_json(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Differences between two JSON values, telling 3 from 3.0 and true from 1."""
    if type(a) is not type(b):
        yield f"{path or '/'}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})"
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                yield f"{path}/{k}: only on the {'first' if k in a else 'second'} side"
            else:
                yield from same_json(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield f"{path or '/'}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from same_json(x, y, f"{path}/{i}")
    elif a != b:
        yield f"{path or '/'}: {a!r} vs {b!r}"


def test_every_spec_schema_has_a_class():
    missing = sorted(set(schemas()) - set(HOME_OF))
    stale = sorted(set(HOME_OF) - set(schemas()))
    assert not missing, f"spec schemas with no entry in SCHEMA_HOMES: {missing}"
    assert not stale, f"SCHEMA_HOMES names schemas the spec does not have: {stale}"
    for name in schemas():
        pydantic_class(name)


def test_instance_counts_are_bounded():
    counts = {name: len(instances(name)) for name in schemas()}
    assert all(0 < n <= MAX_INSTANCES for n in counts.values()), counts
    # Every enum value is its own instance.
    assert len(instances("StopReason")) == 3
    # Each branch of an inline union shows up: the four memory bank configs, the three query
    # generator configs.
    memory_tool = instances("MemoryToolDefinition")
    assert {c["type"] for i in memory_tool for c in i["memory_bank_configs"]} == {"vector", "keyvalue", "keyword", "graph"}
    assert {i["query_generator_config"]["type"] for i in memory_tool} == {"default", "llm", "custom"}


@pytest.mark.parametrize("name", sorted(json.loads(SPEC_PATH.read_text())["components"]["schemas"]))
def test_schema_roundtrip(name: str):
    from llama_stack import _core

    ta = adapter(name)
    cases = instances(name)
    assert cases, f"no instance generated for `{name}`"
    for index, generated in enumerate(cases):
        what = f"`{name}` instance #{index}"
        check_wire(name, generated, f"{what} (as generated)")
        try:
            first = ta.validate_json(json.dumps(generated))
        except Exception as e:
            pytest.fail(f"{what}: pydantic cannot read a spec-valid document: {e}\n{_key(generated)[:2000]}")
        dumped = ta.dump_json(first, exclude_none=True)
        check_wire(name, json.loads(dumped), f"{what} (as pydantic writes it)")
        try:
            through_rust = _core.roundtrip(name, dumped)
        except ValueError as e:
            pytest.fail(f"{what}: the Rust core rejects it: {e}\ninput: {dumped.decode()[:2000]}")
        try:
            second = ta.validate_json(through_rust)
        except Exception as e:
            pytest.fail(f"{what}: pydantic cannot read what Rust wrote: {e}\nRust wrote: {through_rust.decode()[:2000]}")
        assert second == first, f"{what} changed through Rust:\nsent: {dumped.decode()[:2000]}\ngot:  {through_rust.decode()[:2000]}"
        diffs = list(same_json(json.loads(dumped), json.loads(ta.dump_json(second, exclude_none=True))))
        assert not diffs, f"{what}: JSON types changed through Rust: {diffs[:5]}\nsent: {dumped.decode()[:2000]}\ngot:  {through_rust.decode()[:2000]}"


def test_bare_string_url_reads_as_object():
    """The spec's own form of URL (a bare string) is what the official client sends; the core
    reads it and writes the object form every 0.0.41 server writes."""
    from llama_stack import _core

    out = json.loads(_core.roundtrip("URL", b'"https://example.com/a.png"'))
    assert out == {"uri": "https://example.com/a.png"}
    check_wire("URL", out, "URL written by the core")

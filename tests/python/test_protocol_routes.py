"""Every operation of the wire contract has its method on the Protocol class of its API.

The spec was generated from those Protocol classes, so each route's `@webmethod` route, HTTP
method and parameters must agree with it: parameters are the operation's query parameters plus
the properties of its JSON body (the provider-data header is not a parameter).
"""

import importlib
import inspect
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "llama-stack-spec-v0.0.41.json"
PROVIDER_DATA_HEADER = "X-LlamaStack-ProviderData"

# Operation tag → Protocol class.
PROTOCOLS: Dict[str, Tuple[str, str]] = {
    "Agents": ("llama_stack.apis.agents", "Agents"),
    "Inference": ("llama_stack.apis.inference", "Inference"),
    "BatchInference": ("llama_stack.apis.batch_inference", "BatchInference"),
    "Memory": ("llama_stack.apis.memory", "Memory"),
    "MemoryBanks": ("llama_stack.apis.memory_banks", "MemoryBanks"),
    "Models": ("llama_stack.apis.models", "Models"),
    "Shields": ("llama_stack.apis.shields", "Shields"),
    "Safety": ("llama_stack.apis.safety", "Safety"),
    "Inspect": ("llama_stack.apis.inspect", "Inspect"),
    "Telemetry": ("llama_stack.apis.telemetry", "Telemetry"),
    "Datasets": ("llama_stack.apis.datasets", "Datasets"),
    "Evaluations": ("llama_stack.apis.evaluations", "Evaluations"),
    "PostTraining": ("llama_stack.apis.post_training", "PostTraining"),
    "RewardScoring": ("llama_stack.apis.reward_scoring", "RewardScoring"),
    "SyntheticDataGeneration": ("llama_stack.apis.synthetic_data_generation", "SyntheticDataGeneration"),
}

SPEC = json.loads(SPEC_PATH.read_text())
OPERATIONS = [(path, method, op) for path, ops in SPEC["paths"].items() for method, op in ops.items()]


def protocol(tag: str) -> Any:
    assert tag in PROTOCOLS, f"operation tag `{tag}` has no Protocol class in PROTOCOLS"
    module, name = PROTOCOLS[tag]
    cls = getattr(importlib.import_module(module), name, None)
    assert cls is not None, f"`{module}` has no Protocol class `{name}`"
    return cls


def webmethods(cls: Any) -> List[Tuple[str, Any, Any]]:
    """(name, function, WebMethod) of every decorated method, base classes included."""
    found = []
    for name in dir(cls):
        fn = getattr(cls, name, None)
        meta = getattr(fn, "__webmethod__", None)
        if meta is not None:
            found.append((name, fn, meta))
    return found


def expected_parameters(op: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(query parameter names, body property names) of an operation, in spec order."""
    query = [p["name"] for p in op.get("parameters", []) if p["name"] != PROVIDER_DATA_HEADER]
    assert all(p["in"] == "query" for p in op.get("parameters", []) if p["name"] != PROVIDER_DATA_HEADER)
    body: List[str] = []
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        ref = schema["$ref"]
        body = list(SPEC["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("properties", {}))
    return query, body


@pytest.mark.parametrize(
    "path,method,op",
    OPERATIONS,
    ids=[f"{method.upper()} {path}" for path, method, _ in OPERATIONS],
)
def test_operation_has_protocol_method(path: str, method: str, op: Dict[str, Any]):
    (tag,) = op["tags"]
    cls = protocol(tag)
    matches = [(name, fn, meta) for name, fn, meta in webmethods(cls) if meta.route == path]
    assert len(matches) == 1, f"{tag}: expected one @webmethod with route {path!r}, found {[m[0] for m in matches]}"
    name, fn, meta = matches[0]

    # Upstream's server mounts a webmethod without `method` as POST.
    assert (meta.method or "POST").upper() == method.upper(), (
        f"{tag}.{name}: webmethod says {meta.method!r}, the spec says {method.upper()}"
    )

    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    query, body = expected_parameters(op)
    assert sorted(params) == sorted(query + body), (
        f"{tag}.{name}{tuple(params)} vs spec query {query} + body {body}"
    )
    # The spec lists body fields in signature order; keep callers passing them positionally safe.
    assert [p for p in params if p in body] == body, f"{tag}.{name}: body parameters out of spec order"


@pytest.mark.parametrize("tag", sorted(PROTOCOLS))
def test_protocol_has_no_route_outside_the_spec(tag: str):
    routes = {(path, op["tags"][0]) for path, _, op in OPERATIONS}
    extra = [f"{name} → {meta.route}" for name, _, meta in webmethods(protocol(tag)) if (meta.route, tag) not in routes]
    assert not extra, f"{tag} declares routes the spec does not have: {extra}"


def test_every_tag_is_covered():
    tags = {op["tags"][0] for _, _, op in OPERATIONS}
    assert tags == set(PROTOCOLS), f"spec tags {sorted(tags)} vs PROTOCOLS {sorted(PROTOCOLS)}"
    assert len(OPERATIONS) == 50

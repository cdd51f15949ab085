"""The OpenAPI document the server serves at `/openapi.json`.

It is generated from the Protocol classes by `scripts/gen_openapi.py` and committed as
`src/server/openapi.json`; these tests keep it current, valid OpenAPI 3.1, faithful to the 0.0.41
wire contract, and identical to what a running server answers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts" / "gen_openapi.py"
COMMITTED = REPO / "src" / "server" / "openapi.json"
SPEC_PATH = REPO.parent / "shared" / "spec" / "llama-stack-spec-v0.0.41.json"
PROVIDER_DATA_HEADER = "X-LlamaStack-ProviderData"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_openapi", GENERATOR)
    assert spec is not None and spec.loader is not None, f"cannot load {GENERATOR}"
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the defining module up by name while the module runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

REFERENCE: Optional[Dict[str, Any]] = json.loads(SPEC_PATH.read_text()) if SPEC_PATH.exists() else None
REFERENCE_OPERATIONS: List[Tuple[str, str, Dict[str, Any]]] = (
    [(path, method, op) for path, ops in REFERENCE["paths"].items() for method, op in ops.items()]
    if REFERENCE is not None
    else []
)


@pytest.fixture(scope="module")
def rendered() -> str:
    return gen.render()


@pytest.fixture(scope="module")
def document(rendered: str) -> Dict[str, Any]:
    return json.loads(rendered)


def resolve(doc: Dict[str, Any], node: Dict[str, Any]) -> Dict[str, Any]:
    """Follows a local `$ref` (one hop is all the document uses)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/"), f"non-local reference {ref}"
    target: Any = doc
    for part in ref[2:].split("/"):
        assert part in target, f"dangling reference {ref}"
        target = target[part]
    return target


# --- (1) the committed file is what the generator writes ---------------------------------------


def test_committed_document_is_current(rendered: str):
    assert COMMITTED.exists(), f"{COMMITTED} is missing; run scripts/gen_openapi.py"
    assert COMMITTED.read_text(encoding="utf-8") == rendered, (
        "src/server/openapi.json is out of date; run scripts/gen_openapi.py"
    )
    assert gen.main(["--check"]) == 0


def test_check_mode_flags_a_stale_file(tmp_path: Path, rendered: str):
    stale = tmp_path / "openapi.json"
    stale.write_text(rendered.replace('"0.0.41"', '"0.0.40"', 1), encoding="utf-8")
    assert gen.main(["--check", "--output", str(stale)]) == 1
    assert gen.main(["--check", "--output", str(tmp_path / "absent.json")]) == 1
    assert gen.main(["--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == rendered
    assert gen.main(["--check", "--output", str(stale)]) == 0


def test_generation_is_deterministic(rendered: str):
    assert gen.render() == rendered


# --- (2) it is a valid OpenAPI 3.1 document ----------------------------------------------------


def test_valid_openapi_3_1(document: Dict[str, Any]):
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, "\n".join(errors[:20])
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] == "Llama Stack (llama-stack-rs)"
    assert document["info"]["version"] == "0.0.41"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves_and_every_schema_is_used(document: Dict[str, Any]):
    refs = set(_refs(document))
    for ref in sorted(refs):
        resolve(document, {"$ref": ref})
    used = {ref.rsplit("/", 1)[-1] for ref in refs if ref.startswith("#/components/schemas/")}
    unused = sorted(set(document["components"]["schemas"]) - used)
    assert not unused, f"component schemas nothing refers to: {unused}"


def test_operation_shape(document: Dict[str, Any]):
    streaming = {"/inference/chat_completion", "/inference/completion", "/agents/turn/create"}
    declared_only = {"BatchInference", "Datasets", "Evaluations", "PostTraining", "RewardScoring", "SyntheticDataGeneration"}
    operation_ids = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            operation_ids.append(op["operationId"])
            (tag,) = op["tags"]
            headers = [resolve(document, p) for p in op["parameters"]]
            headers = [p for p in headers if p["in"] == "header"]
            assert [(p["name"], p["required"]) for p in headers] == [(PROVIDER_DATA_HEADER, False)], where
            if method == "get":
                assert "requestBody" not in op, f"{where} has a body"
            ok = op["responses"]["200"]["content"]
            assert ("text/event-stream" in ok) == (path in streaming), f"{where}: {sorted(ok)}"
            assert "application/json" in ok, where
            bad = resolve(document, op["responses"]["400"])["content"]["application/json"]["schema"]
            assert {resolve(document, s).get("description") for s in bad["oneOf"]} >= {
                document["components"]["schemas"]["ErrorDetail"]["description"]
            }
            assert ("501" in op["responses"]) == (tag in declared_only), where
    assert len(operation_ids) == len(set(operation_ids)), "operationIds repeat"


def test_error_shapes_match_what_the_server_sends(document: Dict[str, Any]):
    import jsonschema

    schemas = document["components"]["schemas"]
    registry_doc = {"components": {"schemas": schemas}}
    bad = resolve(document, document["components"]["responses"]["BadRequest"])["content"]["application/json"]["schema"]

    def check(instance: Any) -> None:
        jsonschema.validate(instance, {**bad, **registry_doc}, cls=jsonschema.Draft202012Validator)

    check({"error": {"detail": {"errors": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]}}})
    check({"detail": "Invalid value: `x` not registered"})
    with pytest.raises(jsonschema.ValidationError):
        check({"error": {"detail": {"errors": [{"loc": ["body"], "msg": "no type"}]}}})
    with pytest.raises(jsonschema.ValidationError):
        check({"message": "not an error shape"})


# --- (3) every route of the 0.0.41 wire contract, with the same parameters ---------------------


def test_reference_spec_is_present():
    assert REFERENCE is not None, f"the 0.0.41 spec is missing: {SPEC_PATH}"
    assert len(REFERENCE_OPERATIONS) == 50


def _reference_parameters(op: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    assert REFERENCE is not None
    query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = list(resolve(REFERENCE, schema).get("properties", {})) if schema else []
    return query, body


def _our_parameters(doc: Dict[str, Any], op: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    params = [resolve(doc, p) for p in op.get("parameters", [])]
    query = [p["name"] for p in params if p["in"] == "query"]
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = list(resolve(doc, schema).get("properties", {})) if schema else []
    return query, body


@pytest.mark.parametrize(
    "path,method,reference_op",
    REFERENCE_OPERATIONS,
    ids=[f"{method.upper()} {path}" for path, method, _ in REFERENCE_OPERATIONS],
)
def test_reference_operation_is_present(document: Dict[str, Any], path: str, method: str, reference_op: Dict[str, Any]):
    ours = document["paths"].get(path)
    assert ours is not None, f"{path} is missing"
    assert list(ours) == [method], f"{path}: we have {sorted(ours)}, the 0.0.41 spec has {method}"
    op = ours[method]
    assert op["tags"] == reference_op["tags"]
    query, body = _our_parameters(document, op)
    ref_query, ref_body = _reference_parameters(reference_op)
    assert query == ref_query, f"{method.upper()} {path}: query {query} vs {ref_query}"
    assert body == ref_body, f"{method.upper()} {path}: body {body} vs {ref_body}"
    ref_required = {p["name"]: p.get("required", False) for p in reference_op.get("parameters", []) if p["in"] == "query"}
    ours_required = {p["name"]: p["required"] for p in map(lambda p: resolve(document, p), op["parameters"]) if p["in"] == "query"}
    assert ours_required == ref_required


def test_no_operation_beyond_the_reference(document: Dict[str, Any]):
    assert REFERENCE is not None, f"the 0.0.41 spec is missing: {SPEC_PATH}"
    ours = {(path, method) for path, ops in document["paths"].items() for method in ops}
    theirs = {(path, method) for path, method, _ in REFERENCE_OPERATIONS}
    assert ours == theirs, f"ours only: {sorted(ours - theirs)}; spec only: {sorted(theirs - ours)}"


def test_schema_names_follow_the_reference(document: Dict[str, Any]):
    assert REFERENCE is not None, f"the 0.0.41 spec is missing: {SPEC_PATH}"
    missing = sorted(set(REFERENCE["components"]["schemas"]) - set(document["components"]["schemas"]))
    assert not missing, f"schemas of the 0.0.41 spec we do not define under the same name: {missing}"


# --- (4) a running server answers with the same document ---------------------------------------


def _core_has(name: str) -> bool:
    try:
        core = importlib.import_module("llama_stack._core")
    except ImportError:
        return False
    return hasattr(core, name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RUN_CONFIG = """\
version: '2'
image_name: openapi-check
apis:
- telemetry
providers:
  telemetry:
  - provider_id: console
    provider_type: meta-reference
    config: {}
"""

SERVE = "import sys; from llama_stack._core import serve; serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))"


@pytest.mark.skipif(not _core_has("serve"), reason="llama_stack._core is not built with `serve`")
def test_server_serves_the_committed_document(tmp_path: Path):
    import httpx

    import llama_stack

    env = dict(os.environ)
    env["LLAMA_STACK_CONFIG_DIR"] = str(tmp_path / "cfg")
    package_parent = str(Path(llama_stack.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, RUN_CONFIG, str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        if response is None:
            pytest.fail(proc.communicate()[1] if proc.poll() is not None else "no answer from the server")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

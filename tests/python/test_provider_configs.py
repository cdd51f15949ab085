"""Provider config classes: importable from 0.0.41's module paths, field for field the same as
the core's registry of provider types, and usable to build a run config in Python."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
import typing
from typing import Any, Dict, List, Tuple

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from llama_stack import _core

P = "llama_stack.providers"

# (module, class) pairs programs written for 0.0.41 import; a trailing `.config` module is
# checked too where 0.0.41 had one.
UPSTREAM_PATHS: List[Tuple[str, str, bool]] = [
    (f"{P}.adapters.inference.tgi", "TGIImplConfig", True),
    (f"{P}.adapters.inference.tgi", "InferenceAPIImplConfig", True),
    (f"{P}.adapters.inference.tgi", "InferenceEndpointImplConfig", True),
    (f"{P}.adapters.inference.together", "TogetherImplConfig", True),
    (f"{P}.adapters.inference.fireworks", "FireworksImplConfig", True),
    (f"{P}.adapters.inference.databricks", "DatabricksImplConfig", True),
    (f"{P}.adapters.inference.bedrock", "BedrockConfig", True),
    (f"{P}.adapters.inference.ollama", "OllamaImplConfig", False),
    (f"{P}.adapters.inference.sample", "SampleConfig", True),
    (f"{P}.adapters.safety.together", "TogetherSafetyConfig", True),
    (f"{P}.adapters.safety.together", "TogetherProviderDataValidator", True),
    (f"{P}.adapters.safety.bedrock", "BedrockSafetyConfig", True),
    (f"{P}.adapters.safety.sample", "SampleConfig", True),
    (f"{P}.adapters.memory.chroma", "RemoteProviderConfig", False),
    (f"{P}.adapters.memory.pgvector", "PGVectorConfig", True),
    (f"{P}.adapters.memory.weaviate", "WeaviateConfig", True),
    (f"{P}.adapters.memory.weaviate", "WeaviateRequestProviderData", True),
    (f"{P}.adapters.memory.sample", "SampleConfig", True),
    (f"{P}.adapters.agents.sample", "SampleConfig", True),
    (f"{P}.adapters.telemetry.opentelemetry", "OpenTelemetryConfig", True),
    (f"{P}.adapters.telemetry.sample", "SampleConfig", True),
    (f"{P}.impls.meta_reference.inference", "MetaReferenceImplConfig", True),
    (f"{P}.impls.meta_reference.safety", "SafetyConfig", True),
    (f"{P}.impls.meta_reference.safety", "LlamaGuardShieldConfig", True),
    (f"{P}.impls.meta_reference.safety.config", "PromptGuardType", False),
    (f"{P}.impls.meta_reference.codeshield", "CodeShieldConfig", True),
    (f"{P}.impls.meta_reference.memory", "FaissImplConfig", True),
    (f"{P}.impls.meta_reference.agents", "MetaReferenceAgentsImplConfig", True),
    (f"{P}.impls.meta_reference.telemetry", "ConsoleConfig", True),
    (f"{P}.impls.vllm", "VLLMConfig", True),
    (f"{P}.utils.kvstore", "KVStoreConfig", True),
    (f"{P}.utils.kvstore", "SqliteKVStoreConfig", True),
    (f"{P}.utils.kvstore", "RedisKVStoreConfig", True),
    (f"{P}.utils.kvstore", "PostgresKVStoreConfig", True),
    (f"{P}.utils.kvstore", "KVStoreType", True),
    (f"{P}.utils.kvstore.sqlite.config", "SqliteControlPlaneConfig", False),
    ("llama_stack.distribution.datatypes", "RemoteProviderConfig", False),
    ("llama_stack.providers.datatypes", "RemoteProviderConfig", False),
]


def load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


REMOTE = "llama_stack.providers.datatypes.RemoteProviderConfig"

# Provider type -> config class, for every type the core's registry knows.
CONFIG_CLASSES: Dict[Tuple[str, str], str] = {
    ("inference", "remote::ollama"): f"{P}.adapters.inference.ollama.OllamaImplConfig",
    ("inference", "embedded"): f"{P}.impls.embedded.EmbeddedConfig",
    ("inference", "remote::openai"): f"{P}.adapters.inference.openai.OpenAIImplConfig",
    ("inference", "meta-reference"): f"{P}.impls.meta_reference.inference.MetaReferenceImplConfig",
    ("inference", "vllm"): f"{P}.impls.vllm.VLLMConfig",
    ("inference", "remote::tgi"): f"{P}.adapters.inference.tgi.TGIImplConfig",
    ("inference", "remote::hf::serverless"): f"{P}.adapters.inference.tgi.InferenceAPIImplConfig",
    ("inference", "remote::hf::endpoint"): f"{P}.adapters.inference.tgi.InferenceEndpointImplConfig",
    ("inference", "remote::together"): f"{P}.adapters.inference.together.TogetherImplConfig",
    ("inference", "remote::fireworks"): f"{P}.adapters.inference.fireworks.FireworksImplConfig",
    ("inference", "remote::bedrock"): f"{P}.adapters.inference.bedrock.BedrockConfig",
    ("inference", "remote::databricks"): f"{P}.adapters.inference.databricks.DatabricksImplConfig",
    ("inference", "remote"): REMOTE,
    ("safety", "meta-reference"): f"{P}.impls.meta_reference.safety.SafetyConfig",
    ("safety", "meta-reference/codeshield"): f"{P}.impls.meta_reference.codeshield.CodeShieldConfig",
    ("safety", "remote::together"): f"{P}.adapters.safety.together.TogetherSafetyConfig",
    ("safety", "remote::bedrock"): f"{P}.adapters.safety.bedrock.BedrockSafetyConfig",
    ("safety", "remote"): REMOTE,
    ("memory", "meta-reference"): f"{P}.impls.meta_reference.memory.FaissImplConfig",
    ("memory", "remote::chromadb"): f"{P}.adapters.memory.chroma.ChromaConfig",
    ("memory", "remote::pgvector"): f"{P}.adapters.memory.pgvector.PGVectorConfig",
    ("memory", "remote::weaviate"): f"{P}.adapters.memory.weaviate.WeaviateConfig",
    ("memory", "remote"): REMOTE,
    ("agents", "meta-reference"): f"{P}.impls.meta_reference.agents.MetaReferenceAgentsImplConfig",
    ("agents", "remote"): REMOTE,
    ("telemetry", "meta-reference"): f"{P}.impls.meta_reference.telemetry.ConsoleConfig",
    ("telemetry", "remote::opentelemetry-jaeger"): f"{P}.adapters.telemetry.opentelemetry.OpenTelemetryConfig",
    ("telemetry", "remote"): REMOTE,
}

# Values for the required fields, so every class can be instantiated.
REQUIRED_VALUES: Dict[str, Dict[str, Any]] = {
    "TGIImplConfig": {"url": "http://gpu:8080"},
    "InferenceAPIImplConfig": {"huggingface_repo": "meta-llama/Llama-3.1-8B-Instruct"},
    "InferenceEndpointImplConfig": {"endpoint_name": "org/llama"},
    "PGVectorConfig": {"db": "vectors", "user": "me", "password": "secret"},
    "RemoteProviderConfig": {"port": 5001},
    "ChromaConfig": {"port": 8000},
    "TogetherProviderDataValidator": {"together_api_key": "k"},
    "WeaviateRequestProviderData": {"weaviate_api_key": "k", "weaviate_cluster_url": "https://w.example"},
    "PostgresKVStoreConfig": {"user": "me"},
    "SqliteControlPlaneConfig": {"db_path": "/tmp/control.db"},
}

REGISTRY: List[Dict[str, Any]] = json.loads(_core.provider_types())


def spec_id(spec: Dict[str, Any]) -> str:
    return f"{spec['api']}:{spec['provider_type']}"


def build(cls: type) -> BaseModel:
    return cls(**REQUIRED_VALUES.get(cls.__name__, {}))


def plain(annotation: Any) -> Any:
    """The type without ``Annotated[...]`` metadata and without ``Optional``."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return plain(args[0])
    return annotation


def kind_matches(kind: str, annotation: Any) -> bool:
    """Whether a field's Python type holds the JSON kind the registry declares."""
    t = plain(annotation)
    origin = typing.get_origin(t)
    if kind == "string":
        return t is str
    if kind == "integer":
        return t is int
    if kind == "number":
        return t is float
    if kind == "boolean":
        return t is bool
    if kind == "list":
        return t is list or origin in (list, List)
    if kind == "object":
        members = [plain(m) for m in typing.get_args(t)] if origin in (typing.Union, types.UnionType) else [t]
        return all(
            isinstance(m, type) and issubclass(m, BaseModel) or m is dict or typing.get_origin(m) is dict
            for m in members
        )
    return False


@pytest.mark.parametrize("module,name,has_config_module", UPSTREAM_PATHS, ids=lambda v: str(v))
def test_imports_from_upstream_paths(module: str, name: str, has_config_module: bool) -> None:
    obj = getattr(importlib.import_module(module), name)
    if has_config_module:
        assert getattr(importlib.import_module(f"{module}.config"), name) is obj
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        build(obj)  # every class with no required fields (or known ones) can be instantiated


def test_table_covers_the_registry() -> None:
    known = {(s["api"], s["provider_type"]) for s in REGISTRY}
    assert known == set(CONFIG_CLASSES), "provider types with no config class, or classes for unknown types"


@pytest.mark.parametrize("spec", REGISTRY, ids=spec_id)
def test_fields_and_defaults_match_registry(spec: Dict[str, Any]) -> None:
    cls = load(CONFIG_CLASSES[(spec["api"], spec["provider_type"])])
    assert issubclass(cls, BaseModel)
    fields = cls.model_fields
    assert list(fields) == [f["name"] for f in spec["config_fields"]]
    for f in spec["config_fields"]:
        info = fields[f["name"]]
        where = f"{cls.__name__}.{f['name']}"
        assert kind_matches(f["type"], info.annotation), f"{where}: {info.annotation} is not a {f['type']}"
        assert info.is_required() == f["required"], where
        if f["required"]:
            assert info.default is PydanticUndefined and info.default_factory is None, where
        elif info.default_factory is not None:
            # A default built per instance: the registry's default must read as the same value.
            from_registry = cls.model_validate({**REQUIRED_VALUES.get(cls.__name__, {}), f["name"]: f["default"]})
            assert getattr(from_registry, f["name"]) == getattr(build(cls), f["name"]), where
        else:
            assert info.default == f["default"], f"{where}: {info.default!r} != {f['default']!r}"
            assert type(info.default) is type(f["default"]) or isinstance(info.default, (int, float)), where


def run_config_with(api: str, provider_type: str, config: Dict[str, Any]) -> Dict[str, Any]:
    from llama_stack.distribution.datatypes import Provider, StackRunConfig

    run = StackRunConfig(
        image_name="python-built",
        apis=[api],
        providers={api: [Provider(provider_id="p0", provider_type=provider_type, config=config)]},
    )
    return json.loads(_core.check_run_config(run.model_dump_json(), "python-built run config"))


def test_tgi_run_config_built_in_python_passes_the_core_check() -> None:
    from llama_stack.providers.adapters.inference.tgi import TGIImplConfig

    config = TGIImplConfig(url="http://gpu:8080", api_token="hf_x").model_dump()
    checked = run_config_with("inference", "remote::tgi", config)
    filled = checked["providers"]["inference"][0]["config"]
    assert filled == config
    assert TGIImplConfig.model_validate(filled) == TGIImplConfig(url="http://gpu:8080", api_token="hf_x")


@pytest.mark.parametrize("spec", REGISTRY, ids=spec_id)
def test_every_dumped_config_passes_the_core_check(spec: Dict[str, Any]) -> None:
    cls = load(CONFIG_CLASSES[(spec["api"], spec["provider_type"])])
    made = build(cls)
    dumped = made.model_dump(mode="json")
    checked = run_config_with(spec["api"], spec["provider_type"], dumped)
    filled = checked["providers"][spec["api"]][0]["config"]
    assert cls.model_validate(filled) == made


def test_missing_required_field_is_refused_by_both_sides() -> None:
    from llama_stack.providers.adapters.inference.tgi import TGIImplConfig

    with pytest.raises(ValidationError) as e:
        TGIImplConfig.model_validate({"api_token": "x"})
    assert e.value.errors()[0]["loc"] == ("url",)
    with pytest.raises(ValueError, match=r"providers\.inference\[0\]\.config\.url` is required"):
        run_config_with("inference", "remote::tgi", {"api_token": "x"})


BAD_VALUES: List[Tuple[str, Dict[str, Any], Tuple[Any, ...]]] = [
    (f"{P}.adapters.inference.ollama.OllamaImplConfig", {"port": "many"}, ("port",)),
    (f"{P}.adapters.inference.ollama.OllamaImplConfig", {"timeout": 0}, ("timeout",)),
    (f"{P}.adapters.inference.tgi.InferenceEndpointImplConfig", {"endpoint_name": "a/b", "wait": -1}, ("wait",)),
    (f"{P}.adapters.inference.tgi.InferenceAPIImplConfig", {}, ("huggingface_repo",)),
    (f"{P}.adapters.inference.openai.OpenAIImplConfig", {"models": "gpt-4o"}, ("models",)),
    (f"{P}.adapters.inference.bedrock.BedrockConfig", {"read_timeout": "slow"}, ("read_timeout",)),
    (f"{P}.impls.embedded.EmbeddedConfig", {"threads": 0}, ("threads",)),
    (f"{P}.impls.meta_reference.inference.MetaReferenceImplConfig", {"model": "Llama-Nope"}, ("model",)),
    (f"{P}.impls.meta_reference.inference.MetaReferenceImplConfig", {"quantization": {"type": "int3"}}, ("quantization",)),
    (f"{P}.impls.vllm.VLLMConfig", {"tensor_parallel_size": 0}, ("tensor_parallel_size",)),
    (f"{P}.impls.meta_reference.safety.SafetyConfig", {"llama_guard_shield": {"model": "Llama-Guard-2-8B"}}, ("llama_guard_shield", "model")),
    (f"{P}.adapters.memory.pgvector.PGVectorConfig", {"db": "d", "user": "u"}, ("password",)),
    (f"{P}.adapters.safety.together.TogetherProviderDataValidator", {}, ("together_api_key",)),
    (f"{P}.adapters.memory.weaviate.WeaviateRequestProviderData", {"weaviate_api_key": "k"}, ("weaviate_cluster_url",)),
    (f"{P}.impls.meta_reference.agents.MetaReferenceAgentsImplConfig", {"persistence_store": {"type": "mongo"}}, ("persistence_store",)),
    (f"{P}.impls.meta_reference.agents.MetaReferenceAgentsImplConfig", {"persistence_store": {"type": "postgres"}}, ("persistence_store", "postgres", "user")),
    (f"{P}.utils.kvstore.RedisKVStoreConfig", {"port": 70000}, ("port",)),
]


@pytest.mark.parametrize("path,values,loc", BAD_VALUES, ids=lambda v: str(v))
def test_bad_values_raise_validation_error_naming_the_field(path: str, values: Dict[str, Any], loc: tuple) -> None:
    with pytest.raises(ValidationError) as e:
        load(path).model_validate(values)
    assert [err["loc"] for err in e.value.errors()] == [loc]


def test_kvstore_config_picks_the_kind_by_type() -> None:
    from llama_stack.providers.impls.meta_reference.agents import MetaReferenceAgentsImplConfig
    from llama_stack.providers.utils.kvstore import PostgresKVStoreConfig, RedisKVStoreConfig, SqliteKVStoreConfig

    def store(raw: Any) -> Any:
        return MetaReferenceAgentsImplConfig.model_validate({"persistence_store": raw}).persistence_store

    assert store({"type": "redis", "port": 6380}) == RedisKVStoreConfig(port=6380)
    assert store({"type": "redis"}).url == "redis://localhost:6379"
    assert store({"db_path": "/tmp/x.db"}) == SqliteKVStoreConfig(db_path="/tmp/x.db")
    pg = store({"type": "postgres", "user": "u", "namespace": "n"})
    assert isinstance(pg, PostgresKVStoreConfig) and (pg.db, pg.port, pg.namespace) == ("llamastack", 5432, "n")
    assert store(RedisKVStoreConfig(host="cache")) == RedisKVStoreConfig(host="cache")


def test_sqlite_default_path_follows_config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from llama_stack.providers.utils.kvstore import SqliteKVStoreConfig

    monkeypatch.setenv("LLAMA_STACK_CONFIG_DIR", str(tmp_path))
    assert SqliteKVStoreConfig().db_path == (tmp_path / "runtime" / "kvstore.db").as_posix()


def test_ollama_base_url_and_model_parallel_size() -> None:
    from llama_stack.providers.adapters.inference.ollama import OllamaImplConfig
    from llama_stack.providers.impls.meta_reference.inference import MetaReferenceImplConfig

    assert OllamaImplConfig(host="box").base_url == "http://box:11434"
    assert OllamaImplConfig(host="box", url="https://o.example/").base_url == "https://o.example/"
    assert MetaReferenceImplConfig(model="Llama3.1-405B-Instruct:bf16-mp8").model_parallel_size == 8


def test_importing_configs_stays_light() -> None:
    modules = sorted({m for m, _, _ in UPSTREAM_PATHS} | {p.rpartition(".")[0] for p in CONFIG_CLASSES.values()})
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "heavy = [m for m in ('torch', 'llama_stack._core', 'httpx', 'numpy') if m in sys.modules]\n"
        + "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""

#!/usr/bin/env python3
"""Generates `src/server/openapi.json`, the OpenAPI 3.1 document the server answers
`GET /openapi.json` with, from the Protocol classes of `llama_stack.apis`.

Every `@webmethod` of those classes becomes one operation. A GET takes its parameters in the
query string; any other method takes them as properties of one JSON object in the body, the way
the server reads them. Schemas come from pydantic and are shared under `components/schemas`.

    python scripts/gen_openapi.py            # rewrite the file
    python scripts/gen_openapi.py --check    # exit 1 if the file is out of date

The output depends only on the Python sources (no timestamps), so the check is exact.
"""

from __future__ import annotations

import argparse
import collections.abc
import importlib
import inspect
import json
import sys
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "src" / "server" / "openapi.json"

# Generate from this checkout's package, whatever else the interpreter has installed.
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))

from pydantic import TypeAdapter  # noqa: E402
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue  # noqa: E402
from pydantic_core import core_schema  # noqa: E402

TITLE = "Llama Stack (llama-stack-rs)"
VERSION = "0.0.41"
DESCRIPTION = (
    "HTTP interface of a Llama Stack 0.0.41 server with a Rust core: inference, safety, memory, "
    "agents, telemetry and their registries, on the same routes and wire format as the 0.0.41 API."
)
OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
PROVIDER_DATA_HEADER = "X-LlamaStack-ProviderData"


@dataclass(frozen=True)
class ApiInfo:
    tag: str
    module: str
    description: str


# One entry per API: operation tag (the Protocol class name), subpackage of `llama_stack.apis`.
APIS: Tuple[ApiInfo, ...] = (
    ApiInfo("Agents", "agents", "Agents that run multi-step turns with tools, memory and shields."),
    ApiInfo("BatchInference", "batch_inference", "Completions for many inputs in one request."),
    ApiInfo("Datasets", "datasets", "Data sets for training and evaluation."),
    ApiInfo("Evaluations", "evaluations", "Evaluation jobs over a model's outputs."),
    ApiInfo("Inference", "inference", "Text and chat completion, streamed or not, and embeddings."),
    ApiInfo("Inspect", "inspect", "What this server runs: providers, routes, health."),
    ApiInfo("Memory", "memory", "Storing documents in memory banks and retrieving relevant chunks."),
    ApiInfo("MemoryBanks", "memory_banks", "The registry of memory banks."),
    ApiInfo("Models", "models", "The registry of models."),
    ApiInfo("PostTraining", "post_training", "Fine-tuning and preference-optimisation jobs."),
    ApiInfo("RewardScoring", "reward_scoring", "Scoring candidate replies with a reward model."),
    ApiInfo("Safety", "safety", "Running a shield over a conversation."),
    ApiInfo("Shields", "shields", "The registry of shields."),
    ApiInfo("SyntheticDataGeneration", "synthetic_data_generation", "Generating and filtering synthetic dialogs."),
    ApiInfo("Telemetry", "telemetry", "Logging events and reading back traces."),
)

# One-line summary of each operation, keyed by the Protocol method's name. A method with a
# docstring uses its first line instead; one with neither gets its name spelled out.
SUMMARIES: Dict[str, str] = {
    "create_agent": "Create an agent from a configuration",
    "create_agent_session": "Open a session with an agent",
    "create_agent_turn": "Run one turn of a session",
    "delete_agents": "Delete an agent",
    "delete_agents_session": "Delete a session of an agent",
    "get_agents_session": "Read a session, optionally only some of its turns",
    "get_agents_step": "Read one step of a turn",
    "get_agents_turn": "Read one turn of a session",
    "chat_completion": "Generate the next assistant message of a conversation",
    "completion": "Continue a prompt",
    "embeddings": "Embed texts with an embedding model",
    "batch_chat_completion": "Generate replies for many conversations",
    "batch_completion": "Continue many prompts",
    "insert_documents": "Add documents to a memory bank",
    "query_documents": "Retrieve the chunks of a memory bank closest to a query",
    "get_memory_bank": "Look up a memory bank by identifier",
    "list_memory_banks": "List the registered memory banks",
    "register_memory_bank": "Register a memory bank with a provider",
    "get_model": "Look up a model by identifier",
    "list_models": "List the registered models",
    "register_model": "Register a model with a provider",
    "get_shield": "Look up a shield by type",
    "list_shields": "List the registered shields",
    "register_shield": "Register a shield with a provider",
    "run_shield": "Check messages with a shield",
    "health": "Report whether the server is up",
    "list_providers": "List the provider instance serving each API",
    "list_routes": "List the routes of each API and the providers behind them",
    "get_trace": "Read a trace by id",
    "log_event": "Record a log, metric or span event",
    "create_dataset": "Register a data set",
    "delete_dataset": "Remove a data set",
    "get_dataset": "Look up a data set",
    "cancel_evaluation_job": "Cancel an evaluation job",
    "evaluate_question_answering": "Start a question-answering evaluation",
    "evaluate_summarization": "Start a summarization evaluation",
    "evaluate_text_generation": "Start a text-generation evaluation",
    "get_evaluation_job_artifacts": "Read what an evaluation job produced",
    "get_evaluation_job_logstream": "Read the log of an evaluation job",
    "get_evaluation_job_status": "Read the status of an evaluation job",
    "get_evaluation_jobs": "List evaluation jobs",
    "cancel_training_job": "Cancel a post-training job",
    "get_training_job_artifacts": "Read what a post-training job produced",
    "get_training_job_logstream": "Read the log of a post-training job",
    "get_training_job_status": "Read the status of a post-training job",
    "get_training_jobs": "List post-training jobs",
    "preference_optimize": "Start a preference-optimisation job",
    "supervised_fine_tune": "Start a supervised fine-tuning job",
    "reward_score": "Score candidate replies with a reward model",
    "synthetic_data_generate": "Generate and filter synthetic dialogs",
}

# Types defined by `llama_models` rather than this package: their docstrings are not ours to
# publish, so the document describes them in these words instead.
FOREIGN_DESCRIPTIONS: Dict[str, str] = {
    "BuiltinTool": "A tool the model knows by name from its training.",
    "CompletionMessage": "A message written by the assistant, possibly with tool calls.",
    "ImageMedia": "An image, inline or by URL.",
    "SamplingParams": "How the next tokens are chosen: strategy, temperature, top-p/top-k, length.",
    "SamplingStrategy": "Greedy decoding, nucleus (top-p) or top-k sampling.",
    "StopReason": "Why generation stopped.",
    "SystemMessage": "Instructions for the assistant.",
    "TokenLogProbs": "Log probabilities of the most likely tokens at one position.",
    "ToolCall": "A call of a tool by the model: which tool, with which arguments.",
    "ToolChoice": "Whether the model may pick a tool on its own or must answer in text.",
    "ToolDefinition": "A tool offered to the model: its name, description and parameters.",
    "ToolParamDefinition": "One parameter of a tool.",
    "ToolPromptFormat": "How tool definitions and calls are written into the prompt.",
    "ToolResponse": "The result of a tool call.",
    "ToolResponseMessage": "A message carrying a tool's result back to the model.",
    "URL": "A link to content.",
    "UserMessage": "A message from the user, with optional context.",
}

BAD_REQUEST_DESCRIPTION = (
    "The request is invalid: either the body or query failed validation (each problem listed with "
    "where it is, what is wrong and its kind), or a value was refused (one `detail` message)."
)
NOT_IMPLEMENTED_DESCRIPTION = "This API is part of the interface, but this server has no implementation of it."


@dataclass
class Param:
    name: str
    annotation: Any
    has_default: bool
    default: Any = None


@dataclass
class Operation:
    api: ApiInfo
    name: str
    route: str
    method: str
    summary: str
    query: List[Param] = field(default_factory=list)
    body: List[Param] = field(default_factory=list)
    response: Any = None
    stream_event: Any = None
    declared_only: bool = False

    @property
    def request_schema_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_")) + "Request"


class GenerationError(Exception):
    """The Protocol classes cannot be turned into a document; the message says where."""


class _Schemas(GenerateJsonSchema):
    """Pydantic's schema generator, noting which types come from outside this package.

    Their prose is not ours to publish; `_own_words` replaces it once the definitions exist
    (an enum's description is only filled in after these hooks run).
    """

    foreign: Set[str] = set()

    def _note(self, cls: Any) -> None:
        if not getattr(cls, "__module__", "").startswith("llama_stack."):
            _Schemas.foreign.add(cls.__name__)

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        self._note(schema["cls"])
        return super().model_schema(schema)

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        self._note(schema["cls"])
        return super().enum_schema(schema)


def _own_words(definitions: Dict[str, Any], foreign: Set[str]) -> None:
    """Drops the docstrings of types defined outside this package, in favour of ours."""
    for name in sorted(foreign & set(definitions)):
        schema = definitions[name]
        schema.pop("description", None)
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("description", None)
        if name in FOREIGN_DESCRIPTIONS:
            schema["description"] = FOREIGN_DESCRIPTIONS[name]


def _served_apis() -> set:
    from llama_stack.providers.datatypes import Api

    return {api.value for api in Api}


def _split_return(annotation: Any) -> Tuple[Any, Any]:
    """(JSON response type, stream event type or None) of a method's return annotation.

    A streaming method is annotated `Union[Response, AsyncIterator[Chunk]]`.
    """
    if typing.get_origin(annotation) is typing.Union:
        plain = []
        events = []
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) in (collections.abc.AsyncIterator, collections.abc.AsyncGenerator):
                events.append(typing.get_args(arg)[0])
            else:
                plain.append(arg)
        if events:
            if len(events) != 1 or len(plain) != 1:
                raise GenerationError(f"cannot tell response from stream in `{annotation}`")
            return plain[0], events[0]
    return annotation, None


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_scalar(annotation: Any) -> bool:
    inner = _unwrap_optional(annotation)
    return inner in (str, int, float, bool) or (isinstance(inner, type) and issubclass(inner, Enum))


def _webmethods(cls: Any) -> List[Tuple[str, Any, Any]]:
    found = []
    for name in sorted(dir(cls)):
        fn = getattr(cls, name, None)
        meta = getattr(fn, "__webmethod__", None)
        if meta is not None:
            found.append((name, fn, meta))
    return found


def collect_operations() -> List[Operation]:
    """Every `@webmethod` of every API's Protocol class, read from its signature."""
    served = _served_apis()
    ops: List[Operation] = []
    for api in APIS:
        module_name = f"llama_stack.apis.{api.module}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise GenerationError(f"cannot import `{module_name}`: {e}") from e
        cls = getattr(module, api.tag, None)
        if cls is None:
            raise GenerationError(f"`{module_name}` has no Protocol class `{api.tag}`")
        methods = _webmethods(cls)
        if not methods:
            raise GenerationError(f"`{module_name}.{api.tag}` declares no @webmethod")
        for name, fn, meta in methods:
            where = f"{api.tag}.{name}"
            if not meta.route:
                raise GenerationError(f"{where}: @webmethod has no route")
            try:
                hints = typing.get_type_hints(fn, include_extras=True)
            except Exception as e:  # a dangling forward reference, typically
                raise GenerationError(f"{where}: cannot resolve annotations: {e}") from e
            # A webmethod without a method is mounted as POST.
            method = (meta.method or "POST").upper()
            doc = inspect.getdoc(fn)
            summary = doc.splitlines()[0] if doc else SUMMARIES.get(name, name.replace("_", " ").capitalize())
            op = Operation(api=api, name=name, route=meta.route, method=method, summary=summary)
            op.declared_only = api.module not in served
            for p in inspect.signature(fn).parameters.values():
                if p.name == "self":
                    continue
                if p.name not in hints:
                    raise GenerationError(f"{where}: parameter `{p.name}` has no type annotation")
                param = Param(p.name, hints[p.name], p.default is not inspect.Parameter.empty, None)
                if param.has_default:
                    param.default = p.default
                # GET reads everything from the query. A POST named `get_*` takes its scalar
                # arguments in the query too: that is where clients send them (the server
                # accepts them from either place).
                if method == "GET" or (name.startswith("get_") and _is_scalar(param.annotation)):
                    op.query.append(param)
                else:
                    op.body.append(param)
            if "return" not in hints:
                raise GenerationError(f"{where}: no return annotation")
            op.response, op.stream_event = _split_return(hints["return"])
            # A method annotated with its event type alone streams when asked (`stream`).
            if op.stream_event is None and any(p.name == "stream" for p in op.body):
                op.stream_event = op.response
            ops.append(op)
    ops.sort(key=lambda o: (o.route, o.method))
    seen: Dict[Tuple[str, str], str] = {}
    names: Dict[str, str] = {}
    for op in ops:
        key = (op.route, op.method)
        if key in seen:
            raise GenerationError(f"{op.method} {op.route} is declared twice: {seen[key]} and {op.api.tag}.{op.name}")
        seen[key] = f"{op.api.tag}.{op.name}"
        if op.name in names:
            raise GenerationError(f"operation name `{op.name}` is used by both {names[op.name]} and {op.api.tag}")
        names[op.name] = op.api.tag
    return ops


def _json_default(param: Param) -> Any:
    """A parameter's default as JSON, through the parameter's own type."""
    return TypeAdapter(param.annotation).dump_python(param.default, mode="json", warnings=False)


def _generate_schemas(ops: Sequence[Operation]) -> Tuple[Dict[Any, Any], Dict[str, Any]]:
    """JSON schemas of every parameter and response type, sharing one set of definitions."""
    inputs: List[Tuple[Any, JsonSchemaMode, TypeAdapter]] = []
    for op in ops:
        for p in op.query:
            inputs.append(((op.name, "param", p.name), "validation", TypeAdapter(_unwrap_optional(p.annotation))))
        for p in op.body:
            inputs.append(((op.name, "param", p.name), "validation", TypeAdapter(p.annotation)))
        inputs.append(((op.name, "response"), "serialization", TypeAdapter(op.response)))
        if op.stream_event is not None:
            inputs.append(((op.name, "event"), "serialization", TypeAdapter(op.stream_event)))
    _Schemas.foreign = set()
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE, schema_generator=_Schemas)
    definitions = defs.get("$defs", {})
    _own_words(definitions, _Schemas.foreign)
    odd = [name for name in definitions if not name.isidentifier() or "__" in name]
    if odd:
        # pydantic qualifies a name with its module when two types share it.
        raise GenerationError(f"schema names clash between modules: {sorted(odd)}")
    return {key[0]: schema for key, schema in keyed.items()}, definitions


def _error_schemas() -> Dict[str, Any]:
    return {
        "ValidationIssue": {
            "type": "object",
            "description": "One problem found in a request.",
            "properties": {
                "loc": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Where the problem is: `body` or `query`, then field names and list indexes.",
                },
                "msg": {"type": "string", "description": "What is wrong, for people."},
                "type": {"type": "string", "description": "The kind of problem, for programs (e.g. `missing`)."},
            },
            "required": ["loc", "msg", "type"],
        },
        "ValidationErrorResponse": {
            "type": "object",
            "description": "Body of a 400 answer to a request that failed validation.",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "detail": {
                            "type": "object",
                            "properties": {
                                "errors": {"type": "array", "items": {"$ref": REF_TEMPLATE.format(model="ValidationIssue")}}
                            },
                            "required": ["errors"],
                        }
                    },
                    "required": ["detail"],
                }
            },
            "required": ["error"],
        },
        "ErrorDetail": {
            "type": "object",
            "description": "Body of an error answer that carries one message.",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        },
    }


def _json(schema: Any) -> Dict[str, Any]:
    return {"application/json": {"schema": schema}}


def build_document() -> Dict[str, Any]:
    """The whole OpenAPI document as a dict."""
    ops = collect_operations()
    schemas_of, definitions = _generate_schemas(ops)
    components: Dict[str, Any] = dict(definitions)

    def add_component(name: str, schema: Dict[str, Any]) -> None:
        if name in components:
            raise GenerationError(f"component schema `{name}` would be defined twice")
        components[name] = schema

    for name, schema in _error_schemas().items():
        add_component(name, schema)

    paths: Dict[str, Dict[str, Any]] = {}
    for op in ops:
        operation: Dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "tags": [op.api.tag],
        }
        parameters: List[Dict[str, Any]] = []
        for p in op.query:
            parameters.append(
                {
                    "name": p.name,
                    "in": "query",
                    "required": not p.has_default,
                    "schema": schemas_of[(op.name, "param", p.name)],
                }
            )
        parameters.append({"$ref": "#/components/parameters/ProviderData"})
        operation["parameters"] = parameters

        if op.body:
            properties: Dict[str, Any] = {}
            required: List[str] = []
            for p in op.body:
                prop = dict(schemas_of[(op.name, "param", p.name)])
                if p.has_default:
                    prop["default"] = _json_default(p)
                else:
                    required.append(p.name)
                properties[p.name] = prop
            body_schema: Dict[str, Any] = {
                "type": "object",
                "description": f"Body of `{op.method} {op.route}`.",
                "properties": properties,
            }
            if required:
                body_schema["required"] = required
            add_component(op.request_schema_name, body_schema)
            operation["requestBody"] = {
                # An empty body reads as `{}`, so it may be left out when no field is required.
                "required": bool(required),
                "content": _json({"$ref": REF_TEMPLATE.format(model=op.request_schema_name)}),
            }

        if op.response is type(None) or op.response is None:
            ok: Dict[str, Any] = {"description": "Done; the body is `null`.", "content": _json({"type": "null"})}
        elif op.stream_event is not None:
            ok = {
                "description": (
                    "The result as one JSON document or, when `stream` is true, a server-sent event "
                    "stream whose every `data:` line holds one event."
                ),
                "content": {
                    **_json(schemas_of[(op.name, "response")]),
                    "text/event-stream": {"schema": schemas_of[(op.name, "event")]},
                },
            }
        else:
            ok = {"description": "The result.", "content": _json(schemas_of[(op.name, "response")])}
        responses: Dict[str, Any] = {"200": ok, "400": {"$ref": "#/components/responses/BadRequest"}}
        if op.declared_only:
            responses["501"] = {"$ref": "#/components/responses/NotImplemented"}
        operation["responses"] = responses
        paths.setdefault(op.route, {})[op.method.lower()] = operation

    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "tags": [{"name": api.tag, "description": api.description} for api in APIS],
        "paths": paths,
        "components": {
            "schemas": components,
            "parameters": {
                "ProviderData": {
                    "name": PROVIDER_DATA_HEADER,
                    "in": "header",
                    "required": False,
                    "description": (
                        "JSON object of per-request settings for providers (API keys and the like), "
                        "passed to the provider that serves the request."
                    ),
                    "schema": {"type": "string"},
                }
            },
            "responses": {
                "BadRequest": {
                    "description": BAD_REQUEST_DESCRIPTION,
                    "content": _json(
                        {
                            "oneOf": [
                                {"$ref": REF_TEMPLATE.format(model="ValidationErrorResponse")},
                                {"$ref": REF_TEMPLATE.format(model="ErrorDetail")},
                            ]
                        }
                    ),
                },
                "NotImplemented": {
                    "description": NOT_IMPLEMENTED_DESCRIPTION,
                    "content": _json({"$ref": REF_TEMPLATE.format(model="ErrorDetail")}),
                },
            },
        },
    }


def _canonical(value: Any, in_properties: bool = False) -> Any:
    """Sorts object keys, except the fields of a schema's `properties`, whose order is the
    model's field order and reads better kept."""
    if isinstance(value, dict):
        keys = list(value) if in_properties else sorted(value)
        return {k: _canonical(value[k], in_properties=(k == "properties" and not in_properties)) for k in keys}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def render(document: Optional[Dict[str, Any]] = None) -> str:
    """The document as the text written to `OUTPUT`."""
    doc = build_document() if document is None else document
    return json.dumps(_canonical(doc), indent=2, ensure_ascii=False) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the server's OpenAPI document.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where the document goes (default: {OUTPUT})")
    args = parser.parse_args(argv)
    try:
        text = render()
    except GenerationError as e:
        print(f"gen_openapi: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"gen_openapi: {args.output} is out of date; run scripts/gen_openapi.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    doc = json.loads(text)
    n_ops = sum(len(v) for v in doc["paths"].values())
    print(f"wrote {args.output}: {n_ops} operations, {len(doc['components']['schemas'])} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())

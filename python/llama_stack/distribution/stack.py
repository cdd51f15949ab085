"""A stack running inside this Python process, without a server.

``LlamaStack`` is built from a run config (a path, YAML text, a ``StackRunConfig`` or nothing for
the built-in default). Its attributes are the APIs, with upstream's method names and
parameters; calls are coroutines that take and return the pydantic models, and a call with
``stream=True`` returns an async iterator of chunks::

    stack = LlamaStack("run.yaml")
    response = await stack.inference.chat_completion(model="m", messages=[UserMessage(content="hi")])
    async for chunk in stack.inference.chat_completion(model="m", messages=[...], stream=True):
        ...

Every call runs through the same operation table as the HTTP server, in the Rust core, with the
GIL released, so a call behaves exactly like the same request sent over HTTP. Nothing blocks the
event loop, so it works inside an already running loop (Jupyter).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, Optional, Tuple, Union

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python

__all__ = ["LlamaStack", "APIS"]

# Attribute name -> (module, protocol class) for every API the stack exposes.
APIS: Dict[str, Tuple[str, str]] = {
    "inference": ("llama_stack.apis.inference", "Inference"),
    "safety": ("llama_stack.apis.safety", "Safety"),
    "agents": ("llama_stack.apis.agents", "Agents"),
    "memory": ("llama_stack.apis.memory", "Memory"),
    "telemetry": ("llama_stack.apis.telemetry", "Telemetry"),
    "models": ("llama_stack.apis.models", "Models"),
    "shields": ("llama_stack.apis.shields", "Shields"),
    "memory_banks": ("llama_stack.apis.memory_banks", "MemoryBanks"),
    "inspect": ("llama_stack.apis.inspect", "Inspect"),
    "batch_inference": ("llama_stack.apis.batch_inference", "BatchInference"),
    "datasets": ("llama_stack.apis.datasets", "Datasets"),
    "evaluations": ("llama_stack.apis.evaluations", "Evaluations"),
    "post_training": ("llama_stack.apis.post_training", "PostTraining"),
    "reward_scoring": ("llama_stack.apis.reward_scoring", "RewardScoring"),
    "synthetic_data_generation": ("llama_stack.apis.synthetic_data_generation", "SyntheticDataGeneration"),
}

DEFAULT_RUN_CONFIG = Path(__file__).resolve().parent.parent / "templates" / "default-run.yaml"


def _config_text(config: Any) -> Tuple[str, str]:
    """Returns (YAML/JSON text, description for messages) for any accepted config form."""
    if config is None:
        return DEFAULT_RUN_CONFIG.read_text(), "built-in default"
    if isinstance(config, BaseModel):
        return config.model_dump_json(), "StackRunConfig object"
    if isinstance(config, dict):
        return json.dumps(to_jsonable_python(config)), "run config dict"
    if isinstance(config, Path) or (isinstance(config, str) and "\n" not in config and config.strip()):
        path = Path(config).expanduser()
        try:
            return path.read_text(), str(path)
        except OSError as e:
            raise ValueError(f"cannot read run config `{path}`: {e.strerror or e}") from None
    if isinstance(config, str):
        return config, "run config text"
    raise TypeError(f"config must be a path, YAML text, a dict or a StackRunConfig, not {type(config).__name__}")


def _stream_item_type(annotation: Any) -> Optional[Any]:
    """The chunk type of an ``AsyncIterator[...]`` inside a return annotation, if any."""
    origin = typing.get_origin(annotation)
    if origin in (AsyncIterator, typing.AsyncIterator) or (
        origin is not None and getattr(origin, "__name__", "") in ("AsyncIterator", "AsyncGenerator")
    ):
        return typing.get_args(annotation)[0]
    if origin is Union:
        for arg in typing.get_args(annotation):
            found = _stream_item_type(arg)
            if found is not None:
                return found
    return None


def _plain_type(annotation: Any) -> Any:
    """The return annotation with any ``AsyncIterator[...]`` member removed."""
    if typing.get_origin(annotation) is Union:
        rest = [a for a in typing.get_args(annotation) if _stream_item_type(a) is None]
        if len(rest) == 1:
            return rest[0]
        return Union[tuple(rest)]  # type: ignore[return-value]
    return annotation


class _Operation:
    """One webmethod: how to turn a Python call into a core call and back."""

    def __init__(self, name: str, func: Callable[..., Any], module_globals: Dict[str, Any]) -> None:
        meta = func.__webmethod__  # type: ignore[attr-defined]
        self.name = name
        self.route: str = meta.route
        self.method: str = (meta.method or "POST").upper()
        self.signature = inspect.signature(func)
        hints = typing.get_type_hints(func, globalns=module_globals, include_extras=True)
        returns = hints.get("return", Any)
        self.chunk_type = _stream_item_type(returns)
        self.result = TypeAdapter(_plain_type(returns))
        self.chunks = TypeAdapter(self.chunk_type) if self.chunk_type is not None else None

    def request(self, args: tuple, kwargs: dict) -> Tuple[Optional[bytes], list, bool]:
        try:
            bound = self.signature.bind(None, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.name}(): {e}") from None
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("self", None)
        stream = bool(params.get("stream")) and self.chunks is not None
        if self.method == "GET":
            query = [(k, v if isinstance(v, str) else json.dumps(to_jsonable_python(v))) for k, v in params.items() if v is not None]
            return None, query, stream
        body = json.dumps(to_jsonable_python(params, by_alias=True)).encode()
        return body, [], stream


class _ApiClient:
    """The methods of one protocol, bound to a stack."""

    def __init__(self, stack: "LlamaStack", protocol: type, module_globals: Dict[str, Any]) -> None:
        self._stack = stack
        self._protocol = protocol
        self._ops: Dict[str, _Operation] = {}
        for name, func in inspect.getmembers(protocol, predicate=inspect.isfunction):
            if hasattr(func, "__webmethod__"):
                self._ops[name] = _Operation(name, func, module_globals)

    def __repr__(self) -> str:
        return f"<{self._protocol.__name__} of {self._stack!r}>"

    def __dir__(self) -> list:
        return sorted(set(super().__dir__()) | set(self._ops))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = self.__dict__.get("_ops", {}).get(name)
        if op is None:
            raise AttributeError(f"{self._protocol.__name__} has no method {name!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            body, query, stream = op.request(args, kwargs)
            if stream:
                return self._stack._stream(op, body, query)
            return self._stack._call(op, body, query)

        call.__name__ = name
        call.__doc__ = getattr(self._protocol, name).__doc__
        # Callers that inspect the method see the protocol's parameters, without `self`.
        call.__signature__ = op.signature.replace(  # type: ignore[attr-defined]
            parameters=list(op.signature.parameters.values())[1:]
        )
        return call


class LlamaStack:
    """A stack built from a run config, serving every API in this process."""

    def __init__(self, config: Any = None, *, provider_data: Optional[Dict[str, Any]] = None) -> None:
        self._config_text, self._source = _config_text(config)
        self._provider_data: Dict[str, Any] = dict(provider_data) if provider_data else {}
        self._core: Any = None
        self._lock: Optional[asyncio.Lock] = None
        self._clients: Dict[str, _ApiClient] = {}

    @classmethod
    async def create(cls, config: Any = None, **kwargs: Any) -> "LlamaStack":
        """Builds the stack now (providers connected, registries loaded)."""
        stack = cls(config, **kwargs)
        await stack._ensure()
        return stack

    def __repr__(self) -> str:
        return f"LlamaStack({self._source})"

    async def __aenter__(self) -> "LlamaStack":
        await self._ensure()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._core is not None:
            await self._core.shutdown()

    async def _ensure(self) -> Any:
        if self._core is not None:
            return self._core
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._core is None:
                from llama_stack import _core

                self._core = await _core.Stack.build(self._config_text, self._source)
        return self._core

    def _request_provider_data(self) -> Optional[str]:
        """The provider data a call carries: the stack's own, overridden key by key by what
        ``set_request_provider_data`` set for the current request."""
        from llama_stack.distribution.request_headers import get_request_provider_data

        request = get_request_provider_data()
        if not request:
            return json.dumps(self._provider_data) if self._provider_data else None
        return json.dumps({**self._provider_data, **request})

    async def _call(self, op: _Operation, body: Optional[bytes], query: list) -> Any:
        provider_data = self._request_provider_data()
        core = await self._ensure()
        raw = await core.call(op.route, op.method, body, query, provider_data)
        return op.result.validate_json(raw)

    def _stream(self, op: _Operation, body: Optional[bytes], query: list) -> AsyncIterator[Any]:
        # Read the provider data now, when the call is made, not when iteration starts.
        return self._stream_events(op, body, query, self._request_provider_data())

    async def _stream_events(
        self, op: _Operation, body: Optional[bytes], query: list, provider_data: Optional[str]
    ) -> AsyncIterator[Any]:
        core = await self._ensure()
        events = await core.call(op.route, op.method, body, query, provider_data)
        assert op.chunks is not None
        if isinstance(events, bytes):
            # A provider may answer a streamed request in one piece; present it as one chunk.
            yield op.chunks.validate_json(events)
            return
        try:
            async for raw in events:
                yield op.chunks.validate_json(raw)
        finally:
            await events.aclose()

    def api(self, name: str) -> _ApiClient:
        """The implementation of one API by its name (``inference``, ``agents``, ...)."""
        client = self._clients.get(name)
        if client is None:
            if name not in APIS:
                raise AttributeError(f"no API named {name!r}; APIs: {', '.join(APIS)}")
            import importlib

            module_name, class_name = APIS[name]
            module = importlib.import_module(module_name)
            protocol = getattr(module, class_name)
            proto_module = importlib.import_module(protocol.__module__)
            client = _ApiClient(self, protocol, vars(proto_module))
            self._clients[name] = client
        return client

    def __getattr__(self, name: str) -> _ApiClient:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.api(name)

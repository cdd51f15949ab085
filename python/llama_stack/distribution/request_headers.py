"""Per-request provider data: the ``X-LlamaStack-ProviderData`` header (API keys and other
per-caller settings, as a JSON object).

The HTTP server reads the header of each request itself. In process, a program calls
``set_request_provider_data(headers)`` with the headers of the request it is handling; every
call it then makes on the stack's APIs (``LlamaStack`` or ``resolve_impls_with_routing``)
carries that data to the providers, exactly as the header would over HTTP::

    set_request_provider_data({"X-LlamaStack-ProviderData": '{"together_api_key": "..."}'})
    await impls[Api.inference].chat_completion(...)

The value lives in a context variable, so concurrent tasks (one per request in an async server)
each see their own, and a task started afterwards inherits it.
"""

from __future__ import annotations

import importlib
import json
import logging
from contextvars import ContextVar
from typing import Any, Dict, Mapping, Optional

__all__ = [
    "PROVIDER_DATA_HEADER",
    "NeedsRequestProviderData",
    "get_request_provider_data",
    "request_provider_data_json",
    "set_request_provider_data",
]

PROVIDER_DATA_HEADER = "X-LlamaStack-ProviderData"
_HEADER_NAMES = (PROVIDER_DATA_HEADER, PROVIDER_DATA_HEADER.lower())

_log = logging.getLogger(__name__)

_provider_data: ContextVar[Optional[Dict[str, Any]]] = ContextVar("llama_stack_provider_data", default=None)


def set_request_provider_data(headers: Optional[Mapping[str, Any]]) -> None:
    """Takes the provider data from a request's headers for the calls that follow in this context.

    ``headers`` is any mapping (a dict, or a web framework's headers object). Headers without
    provider data clear what an earlier request set, so one request never sees another's keys.
    A value that is not a JSON object is ignored, with a warning.
    """
    value: Any = None
    for name in _HEADER_NAMES:
        value = headers.get(name) if headers is not None else None
        if value:
            break
    if not value and headers is not None:
        # Header names are case-insensitive; a plain dict may spell this one any way.
        wanted = PROVIDER_DATA_HEADER.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted), None)
    if not value:
        _provider_data.set(None)
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        _log.warning("ignoring %s: not valid JSON: %r", PROVIDER_DATA_HEADER, value)
        _provider_data.set(None)
        return
    if not isinstance(data, dict):
        _log.warning("ignoring %s: not a JSON object: %r", PROVIDER_DATA_HEADER, value)
        _provider_data.set(None)
        return
    _provider_data.set(data)


def get_request_provider_data() -> Optional[Dict[str, Any]]:
    """The provider data set for the current request (a dict), or None."""
    data = _provider_data.get()
    return dict(data) if data is not None else None


def request_provider_data_json() -> Optional[str]:
    """The current provider data as the header's JSON text, or None."""
    data = _provider_data.get()
    return json.dumps(data) if data is not None else None


def _class_from_path(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class NeedsRequestProviderData:
    """Mixin for a provider that reads the request's provider data through its spec's
    ``provider_data_validator`` (a dotted path to a pydantic model)."""

    def get_request_provider_data(self) -> Any:
        spec = getattr(self, "__provider_spec__", None)
        if spec is None:
            raise ValueError(f"{type(self).__name__} has no provider spec")
        validator_path = getattr(spec, "provider_data_validator", None)
        if not validator_path:
            raise ValueError(f"Provider {spec.provider_type} does not have a validator")
        data = _provider_data.get()
        if not data:
            return None
        validator = _class_from_path(validator_path)
        try:
            return validator(**data)
        except Exception as e:  # a malformed header must not fail the request; it is ignored
            _log.warning("ignoring %s for %s: %s", PROVIDER_DATA_HEADER, spec.provider_type, e)
            return None

"""What the API client modules (``llama_stack.apis.<api>.client``) share: JSON bodies from
pydantic models, and reading a server's SSE stream."""

from __future__ import annotations

import json
import ssl
from typing import Any, AsyncIterator, Dict, Optional

import httpx
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

# Generation on a busy CPU can take a while; a client waits this long for an answer.
DEFAULT_TIMEOUT = 120.0
JSON_HEADERS = {"Content-Type": "application/json"}


_ssl_context: Optional[ssl.SSLContext] = None


def async_client() -> httpx.AsyncClient:
    """A new ``httpx.AsyncClient``, one per call as upstream's clients did, but sharing one TLS
    context: building that context (reading the CA bundle) costs ~60 ms, more than the call."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return httpx.AsyncClient(verify=_ssl_context)


def encodable_dict(d: Any) -> Any:
    """A pydantic model (or anything holding them) as plain JSON values."""
    if isinstance(d, BaseModel):
        return d.model_dump(mode="json", by_alias=True)
    return to_jsonable_python(d, by_alias=True)


def raise_for_status(response: httpx.Response, body: Optional[bytes] = None) -> None:
    """Like ``response.raise_for_status()``, with the server's error text in the message."""
    if response.is_success:
        return
    text = (body if body is not None else response.content).decode("utf-8", errors="replace")
    raise httpx.HTTPStatusError(
        f"HTTP {response.status_code} from {response.request.method} {response.request.url}: {text}",
        request=response.request,
        response=response,
    )


async def sse_events(
    client: httpx.AsyncClient, url: str, body: Dict[str, Any], timeout: float
) -> AsyncIterator[Dict[str, Any]]:
    """POSTs ``body`` and yields each ``data:`` event of the answer, decoded.

    A failed request raises ``httpx.HTTPStatusError``; an error the server sends in the stream
    (``{"error": {...}}``) raises ``RuntimeError`` with its message.
    """
    async with client.stream("POST", url, json=body, headers=JSON_HEADERS, timeout=timeout) as response:
        if not response.is_success:
            raise_for_status(response, await response.aread())
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if not data or data == "[DONE]":
                continue
            event = json.loads(data)
            if isinstance(event, dict) and set(event) == {"error"}:
                error = event["error"]
                message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
                raise RuntimeError(f"the server failed while streaming: {message}")
            yield event


class HttpApiClient:
    """Where a stack's server is and how long to wait for it, with the JSON calls every API
    client makes: a failed request raises ``httpx.HTTPStatusError`` naming the server's error."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def _send(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        async with async_client() as client:
            response = await client.request(
                method, f"{self.base_url}{route}", headers=JSON_HEADERS, timeout=self.timeout, **kwargs
            )
            raise_for_status(response)
            return response

    async def _get_json(self, route: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """GETs ``route`` (with ``params`` as its query) and returns the decoded answer."""
        response = await self._send("GET", route, params=params)
        return response.json()

    async def _post_json(self, route: str, body: Any) -> Any:
        """POSTs ``body`` to ``route`` and returns the decoded answer."""
        response = await self._send("POST", route, json=body)
        return response.json()

    async def _post_only(self, route: str, body: Any) -> None:
        """POSTs ``body`` to ``route`` for its effect; the answer's body is not read as JSON."""
        await self._send("POST", route, json=body)

    async def _stream_events(self, route: str, body: Any) -> AsyncIterator[Dict[str, Any]]:
        """POSTs ``body`` to ``route`` and yields each server-sent event, decoded."""
        async with async_client() as client:
            async for event in sse_events(client, f"{self.base_url}{route}", body, self.timeout):
                yield event


class ProviderHttpClient(HttpApiClient):
    """An API client a stack may also use as a remote provider: nothing to set up or tear down."""

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

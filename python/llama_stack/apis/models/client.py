"""A small HTTP client of a stack's models API (``python -m llama_stack.apis.models.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import List, Optional


from llama_stack.apis.models.models import ModelDefWithProvider, Models
from llama_stack.distribution.utils.client import async_client, DEFAULT_TIMEOUT, JSON_HEADERS, encodable_dict, raise_for_status
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["ModelsClient", "main"]


class ModelsClient(Models):
    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def list_models(self) -> List[ModelDefWithProvider]:
        async with async_client() as client:
            response = await client.get(f"{self.base_url}/models/list", headers=JSON_HEADERS, timeout=self.timeout)
            raise_for_status(response)
            return [ModelDefWithProvider(**x) for x in response.json()]

    async def register_model(self, model: ModelDefWithProvider) -> None:
        async with async_client() as client:
            response = await client.post(
                f"{self.base_url}/models/register",
                json={"model": encodable_dict(model)},
                headers=JSON_HEADERS,
                timeout=self.timeout,
            )
            raise_for_status(response)

    async def get_model(self, identifier: str) -> Optional[ModelDefWithProvider]:
        async with async_client() as client:
            response = await client.get(
                f"{self.base_url}/models/get",
                params={"identifier": identifier},
                headers=JSON_HEADERS,
                timeout=self.timeout,
            )
            raise_for_status(response)
            j = response.json()
            return None if j is None else ModelDefWithProvider(**j)


async def run_main(host: str, port: int, stream: bool) -> None:
    client = ModelsClient(f"http://{host}:{port}")
    response = await client.list_models()
    cprint(f"list_models response={response}", "green")
    for identifier in ("Llama3.1-8B-Instruct", "Llama-Guard-3-1B"):
        found = await client.get_model(identifier)
        cprint(f"get_model response={found}", "blue" if found is not None else "red")


def main(host: str, port: int, stream: bool = True) -> None:
    asyncio.run(run_main(host, port, stream))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.models.client"))

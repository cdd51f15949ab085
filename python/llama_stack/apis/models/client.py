"""A small HTTP client of a stack's models API (``python -m llama_stack.apis.models.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import List, Optional


from llama_stack.apis.models.models import ModelDefWithProvider, Models
from llama_stack.distribution.utils.client import ProviderHttpClient, encodable_dict
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["ModelsClient", "main"]


class ModelsClient(ProviderHttpClient, Models):
    async def list_models(self) -> List[ModelDefWithProvider]:
        return [ModelDefWithProvider(**x) for x in await self._get_json("/models/list")]

    async def register_model(self, model: ModelDefWithProvider) -> None:
        await self._post_only("/models/register", {"model": encodable_dict(model)})

    async def get_model(self, identifier: str) -> Optional[ModelDefWithProvider]:
        j = await self._get_json("/models/get", {"identifier": identifier})
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

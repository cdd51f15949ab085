"""A small HTTP client of a stack's shields API (``python -m llama_stack.apis.shields.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import List, Optional


from llama_stack.apis.shields.shields import ShieldDefWithProvider, Shields
from llama_stack.distribution.utils.client import ProviderHttpClient, encodable_dict
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["ShieldsClient", "main"]


class ShieldsClient(ProviderHttpClient, Shields):
    async def list_shields(self) -> List[ShieldDefWithProvider]:
        return [ShieldDefWithProvider(**x) for x in await self._get_json("/shields/list")]

    async def register_shield(self, shield: ShieldDefWithProvider) -> None:
        await self._post_only("/shields/register", {"shield": encodable_dict(shield)})

    async def get_shield(self, shield_type: str) -> Optional[ShieldDefWithProvider]:
        j = await self._get_json("/shields/get", {"shield_type": shield_type})
        return None if j is None else ShieldDefWithProvider(**j)


async def run_main(host: str, port: int, stream: bool) -> None:
    client = ShieldsClient(f"http://{host}:{port}")
    response = await client.list_shields()
    cprint(f"list_shields response={response}", "green")


def main(host: str, port: int, stream: bool = True) -> None:
    asyncio.run(run_main(host, port, stream))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.shields.client"))

"""A small HTTP client of a stack's shields API (``python -m llama_stack.apis.shields.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import List, Optional


from llama_stack.apis.shields.shields import ShieldDefWithProvider, Shields
from llama_stack.distribution.utils.client import async_client, DEFAULT_TIMEOUT, JSON_HEADERS, encodable_dict, raise_for_status
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["ShieldsClient", "main"]


class ShieldsClient(Shields):
    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def list_shields(self) -> List[ShieldDefWithProvider]:
        async with async_client() as client:
            response = await client.get(f"{self.base_url}/shields/list", headers=JSON_HEADERS, timeout=self.timeout)
            raise_for_status(response)
            return [ShieldDefWithProvider(**x) for x in response.json()]

    async def register_shield(self, shield: ShieldDefWithProvider) -> None:
        async with async_client() as client:
            response = await client.post(
                f"{self.base_url}/shields/register",
                json={"shield": encodable_dict(shield)},
                headers=JSON_HEADERS,
                timeout=self.timeout,
            )
            raise_for_status(response)

    async def get_shield(self, shield_type: str) -> Optional[ShieldDefWithProvider]:
        async with async_client() as client:
            response = await client.get(
                f"{self.base_url}/shields/get",
                params={"shield_type": shield_type},
                headers=JSON_HEADERS,
                timeout=self.timeout,
            )
            raise_for_status(response)
            j = response.json()
            return None if j is None else ShieldDefWithProvider(**j)


async def run_main(host: str, port: int, stream: bool) -> None:
    client = ShieldsClient(f"http://{host}:{port}")
    response = await client.list_shields()
    cprint(f"list_shields response={response}", "green")


def main(host: str, port: int, stream: bool = True) -> None:
    asyncio.run(run_main(host, port, stream))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.shields.client"))

"""A small HTTP client of a stack's inspect API (``python -m llama_stack.apis.inspect.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import Dict, List


from llama_stack.apis.inspect.inspect import HealthInfo, Inspect, ProviderInfo, RouteInfo
from llama_stack.distribution.utils.client import ProviderHttpClient
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["InspectClient", "main"]


class InspectClient(ProviderHttpClient, Inspect):
    async def list_providers(self) -> Dict[str, List[ProviderInfo]]:
        j = await self._get_json("/providers/list")
        return {api: [ProviderInfo(**p) for p in providers] for api, providers in j.items()}  # type: ignore[attr-defined]

    async def list_routes(self) -> Dict[str, List[RouteInfo]]:
        j = await self._get_json("/routes/list")
        return {route: [RouteInfo(**r) for r in infos] for route, infos in j.items()}  # type: ignore[attr-defined]

    async def health(self) -> HealthInfo:
        j = await self._get_json("/health")
        return HealthInfo(**j)  # type: ignore[arg-type]


async def run_main(host: str, port: int) -> None:
    client = InspectClient(f"http://{host}:{port}")
    cprint(f"list_providers response={await client.list_providers()}", "green")
    cprint(f"list_routes response={await client.list_routes()}", "blue")
    cprint(f"health response={await client.health()}", "yellow")


def main(host: str, port: int) -> None:
    asyncio.run(run_main(host, port))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.inspect.client"))

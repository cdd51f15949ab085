"""A small HTTP client of a stack's memory banks API
(``python -m llama_stack.apis.memory_banks.client HOST PORT``)."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional


from llama_stack.apis.memory_banks.memory_banks import (
    GraphMemoryBankDef,
    KeyValueMemoryBankDef,
    KeywordMemoryBankDef,
    MemoryBankDefWithProvider,
    MemoryBanks,
    MemoryBankType,
    VectorMemoryBankDef,
)
from llama_stack.distribution.utils.client import ProviderHttpClient, encodable_dict
from llama_stack.distribution.utils.command_line import cprint, run

__all__ = ["MemoryBanksClient", "deserialize_memory_bank_def", "main"]

_BANK_CLASSES = {
    MemoryBankType.vector.value: VectorMemoryBankDef,
    MemoryBankType.keyvalue.value: KeyValueMemoryBankDef,
    MemoryBankType.keyword.value: KeywordMemoryBankDef,
    MemoryBankType.graph.value: GraphMemoryBankDef,
}


def deserialize_memory_bank_def(j: Optional[Dict[str, Any]]) -> Optional[MemoryBankDefWithProvider]:
    """The bank definition class its ``type`` names; ``None`` stays ``None``."""
    if j is None:
        return None
    if "type" not in j:
        raise ValueError("Memory bank type not specified")
    cls = _BANK_CLASSES.get(j["type"])
    if cls is None:
        raise ValueError(f"Unknown memory bank type: {j['type']}")
    return cls(**j)


class MemoryBanksClient(ProviderHttpClient, MemoryBanks):
    async def list_memory_banks(self) -> List[MemoryBankDefWithProvider]:
        return [deserialize_memory_bank_def(x) for x in await self._get_json("/memory_banks/list")]  # type: ignore[misc]

    async def register_memory_bank(self, memory_bank: MemoryBankDefWithProvider) -> None:
        await self._post_only("/memory_banks/register", {"memory_bank": encodable_dict(memory_bank)})

    async def get_memory_bank(self, identifier: str) -> Optional[MemoryBankDefWithProvider]:
        return deserialize_memory_bank_def(await self._get_json("/memory_banks/get", {"identifier": identifier}))


async def run_main(host: str, port: int, stream: bool) -> None:
    client = MemoryBanksClient(f"http://{host}:{port}")
    response = await client.list_memory_banks()
    cprint(f"list_memory_banks response={response}", "green")


def main(host: str, port: int, stream: bool = True) -> None:
    asyncio.run(run_main(host, port, stream))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.memory_banks.client"))

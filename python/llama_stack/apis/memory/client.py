"""A small HTTP client of a stack's memory API (``python -m llama_stack.apis.memory.client HOST PORT``:
registers a bank, inserts documents and prints what two queries retrieve)."""

from __future__ import annotations

import asyncio
import base64
import mimetypes
from pathlib import Path
from typing import Any, Dict, List, Optional

from llama_models.llama3.api.datatypes import URL, InterleavedTextMedia

from llama_stack.apis.memory.memory import Memory, MemoryBankDocument, QueryDocumentsResponse
from llama_stack.apis.memory_banks.client import MemoryBanksClient
from llama_stack.apis.memory_banks.memory_banks import VectorMemoryBankDef
from llama_stack.distribution.utils.client import ProviderHttpClient, encodable_dict
from llama_stack.distribution.utils.command_line import run
from llama_stack.providers.datatypes import RemoteProviderConfig

__all__ = ["MemoryClient", "get_client_impl", "main"]


async def get_client_impl(config: RemoteProviderConfig, _deps: Any) -> Memory:
    return MemoryClient(config.url)


class MemoryClient(ProviderHttpClient, Memory):
    async def insert_documents(
        self,
        bank_id: str,
        documents: List[MemoryBankDocument],
        ttl_seconds: Optional[int] = None,
    ) -> None:
        body: Dict[str, Any] = {"bank_id": bank_id, "documents": [encodable_dict(d) for d in documents]}
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        await self._post_only("/memory/insert", body)

    async def query_documents(
        self,
        bank_id: str,
        query: InterleavedTextMedia,
        params: Optional[Dict[str, Any]] = None,
    ) -> QueryDocumentsResponse:
        body = {"bank_id": bank_id, "query": encodable_dict(query), "params": params}
        return QueryDocumentsResponse(**await self._post_json("/memory/query", body))


def _data_url_from_file(path: Path) -> URL:
    mime_type = mimetypes.guess_type(str(path))[0] or "text/plain"
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return URL(uri=f"data:{mime_type};base64,{encoded}")


async def run_main(host: str, port: int, stream: bool) -> None:
    banks = MemoryBanksClient(f"http://{host}:{port}")
    bank = VectorMemoryBankDef(
        identifier="test_bank",
        provider_id="",
        embedding_model="all-MiniLM-L6-v2",
        chunk_size_in_tokens=512,
        overlap_size_in_tokens=64,
    )
    await banks.register_memory_bank(bank)
    registered = await banks.get_memory_bank(bank.identifier)
    assert registered is not None and registered.embedding_model == "all-MiniLM-L6-v2"

    pages = ["memory_optimizations.rst", "chat.rst", "llama3.rst", "datasets.rst", "qat_finetune.rst", "lora_finetune.rst"]
    documents = [
        MemoryBankDocument(
            document_id=f"num-{i}",
            content=URL(uri=f"https://raw.githubusercontent.com/pytorch/torchtune/main/docs/source/tutorials/{page}"),
            mime_type="text/plain",
        )
        for i, page in enumerate(pages)
    ]
    documents.append(MemoryBankDocument(document_id="local-0", content=_data_url_from_file(Path(__file__))))

    client = MemoryClient(f"http://{host}:{port}")
    await client.insert_documents(bank_id=bank.identifier, documents=documents)
    for question in ("How do I use Lora?", "Tell me more about llama3 and torchtune"):
        response = await client.query_documents(bank_id=bank.identifier, query=[question])
        for chunk, score in zip(response.chunks, response.scores):
            print(f"Score: {score}")
            print(f"Chunk:\n========\n{chunk}\n========\n")


def main(host: str, port: int, stream: bool = True) -> None:
    asyncio.run(run_main(host, port, stream))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.memory.client"))

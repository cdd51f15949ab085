"""Memory API: insert documents into a memory bank and retrieve the chunks relevant to a query."""

from typing import Any, Dict, List, Optional, Protocol, Union, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import URL, InterleavedTextMedia
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field

from llama_stack.apis.memory_banks import *  # noqa: F403
from llama_stack.apis.memory_banks import MemoryBankDef


@json_schema_type
class MemoryBankDocument(BaseModel):
    """A document to store: inline text/media, or a URL (``http(s)://`` or ``data:``) to fetch."""

    document_id: str
    content: Union[InterleavedTextMedia, URL]
    mime_type: Optional[str] = None
    metadata: Dict[str, Any] = Field(default_factory=dict)


class Chunk(BaseModel):
    """A retrieved piece of a stored document."""

    content: InterleavedTextMedia
    token_count: int
    document_id: str


@json_schema_type
class QueryDocumentsResponse(BaseModel):
    """Retrieved chunks, best first; ``scores[i]`` belongs to ``chunks[i]``."""

    chunks: List[Chunk]
    scores: List[float]


@json_schema_type
class InsertDocumentsRequest(BaseModel):
    """Body of ``POST /memory/insert``."""

    bank_id: str
    documents: List[MemoryBankDocument]
    ttl_seconds: Optional[int] = None


@json_schema_type
class QueryDocumentsRequest(BaseModel):
    """Body of ``POST /memory/query``."""

    bank_id: str
    query: InterleavedTextMedia
    params: Optional[Dict[str, Any]] = None


class MemoryBankStore(Protocol):
    """Lookup of registered banks, handed to memory providers by the stack."""

    def get_memory_bank(self, bank_id: str) -> Optional[MemoryBankDef]: ...


@runtime_checkable
class Memory(Protocol):
    memory_bank_store: MemoryBankStore

    # Returns once the documents are stored and searchable.
    @webmethod(route="/memory/insert", method="POST")
    async def insert_documents(
        self,
        bank_id: str,
        documents: List[MemoryBankDocument],
        ttl_seconds: Optional[int] = None,
    ) -> None: ...

    @webmethod(route="/memory/query", method="POST")
    async def query_documents(
        self,
        bank_id: str,
        query: InterleavedTextMedia,
        params: Optional[Dict[str, Any]] = None,
    ) -> QueryDocumentsResponse: ...

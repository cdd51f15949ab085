"""Memory bank registry API: the banks documents can be stored in, by kind."""

from enum import Enum
from typing import Any, List, Literal, Optional, Protocol, Union, runtime_checkable

from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, BeforeValidator, Field
from typing_extensions import Annotated


@json_schema_type
class MemoryBankType(Enum):
    vector = "vector"
    keyvalue = "keyvalue"
    keyword = "keyword"
    graph = "graph"


class CommonDef(BaseModel):
    """Fields every kind of memory bank has."""

    identifier: str
    # Empty means "not assigned yet"; the registry fills it in or picks a provider.
    provider_id: str = ""


@json_schema_type
class VectorMemoryBankDef(CommonDef):
    """A bank searched by embedding similarity over chunks of the inserted documents."""

    type: Literal["vector"] = "vector"
    embedding_model: str
    chunk_size_in_tokens: int
    overlap_size_in_tokens: Optional[int] = None


@json_schema_type
class KeyValueMemoryBankDef(CommonDef):
    type: Literal["keyvalue"] = "keyvalue"


@json_schema_type
class KeywordMemoryBankDef(CommonDef):
    type: Literal["keyword"] = "keyword"


@json_schema_type
class GraphMemoryBankDef(CommonDef):
    type: Literal["graph"] = "graph"


def _infer_bank_type(value: Any) -> Any:
    # Clients written against 0.0.41 register vector banks without a "type" key; the
    # embedding model alone identifies such a bank, so read it as a vector bank rather than
    # failing on the missing discriminator.
    if isinstance(value, dict) and "type" not in value and "embedding_model" in value:
        return {**value, "type": MemoryBankType.vector.value}
    return value


MemoryBankDef = Annotated[
    Union[
        VectorMemoryBankDef,
        KeyValueMemoryBankDef,
        KeywordMemoryBankDef,
        GraphMemoryBankDef,
    ],
    Field(discriminator="type"),
    BeforeValidator(_infer_bank_type),
]

# provider_id already lives on every bank definition, so both names denote one type.
MemoryBankDefWithProvider = MemoryBankDef


@json_schema_type
class RegisterMemoryBankRequest(BaseModel):
    """Body of ``POST /memory_banks/register``."""

    memory_bank: MemoryBankDefWithProvider


@runtime_checkable
class MemoryBanks(Protocol):
    @webmethod(route="/memory_banks/list", method="GET")
    async def list_memory_banks(self) -> List[MemoryBankDefWithProvider]: ...

    @webmethod(route="/memory_banks/get", method="GET")
    async def get_memory_bank(self, identifier: str) -> Optional[MemoryBankDefWithProvider]: ...

    @webmethod(route="/memory_banks/register", method="POST")
    async def register_memory_bank(self, memory_bank: MemoryBankDefWithProvider) -> None: ...

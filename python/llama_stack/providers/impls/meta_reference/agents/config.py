"""Settings of the reference agents provider."""

from pydantic import BaseModel, Field

from llama_stack.providers.utils.kvstore import KVStoreConfig, SqliteKVStoreConfig


class MetaReferenceAgentsImplConfig(BaseModel):
    """``meta-reference`` agents: where agents, sessions and turns are kept."""

    persistence_store: KVStoreConfig = Field(
        default_factory=SqliteKVStoreConfig,
        description="Key-value store for agents, sessions and turns; default: SQLite under the config dir",
    )

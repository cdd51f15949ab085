"""Where a provider keeps state that must outlive the process: SQLite, Redis or PostgreSQL.

``KVStoreConfig`` picks the kind by its ``type`` key. A mapping without ``type`` is read as
SQLite, the same way the core reads it.
"""

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, Tag


class KVStoreType(Enum):
    redis = "redis"
    sqlite = "sqlite"
    postgres = "postgres"


def _runtime_dir() -> Path:
    # Same rule as the core: $LLAMA_STACK_CONFIG_DIR (when not empty), else ~/.llama.
    base = os.environ.get("LLAMA_STACK_CONFIG_DIR") or os.path.expanduser("~/.llama")
    return Path(base) / "runtime"


def default_sqlite_path() -> str:
    """The SQLite file used when ``db_path`` is not given: ``<config dir>/runtime/kvstore.db``."""
    return (_runtime_dir() / "kvstore.db").as_posix()


class CommonConfig(BaseModel):
    """Settings every store kind shares."""

    namespace: Optional[str] = Field(
        default=None,
        description="Prefix put before every key, so several stacks can share one database",
    )


class RedisKVStoreConfig(CommonConfig):
    """A Redis server."""

    type: Literal["redis"] = KVStoreType.redis.value
    host: str = "localhost"
    port: int = Field(default=6379, ge=0, le=65535)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"


class SqliteKVStoreConfig(CommonConfig):
    """A local SQLite file."""

    type: Literal["sqlite"] = KVStoreType.sqlite.value
    # Computed when the config is built, so a changed LLAMA_STACK_CONFIG_DIR is honoured.
    db_path: str = Field(
        default_factory=default_sqlite_path,
        description="Path of the SQLite file (a leading ~/ is expanded)",
    )


class PostgresKVStoreConfig(CommonConfig):
    """A PostgreSQL database."""

    type: Literal["postgres"] = KVStoreType.postgres.value
    host: str = "localhost"
    port: int = Field(default=5432, ge=0, le=65535)
    db: str = "llamastack"
    user: str
    password: Optional[str] = None
    table_name: str = Field(
        default="llamastack_kvstore",
        description="Table holding the keys and values",
    )


def _store_kind(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        return value.get("type", KVStoreType.sqlite.value)
    return getattr(value, "type", None)


KVStoreConfig = Annotated[
    Union[
        Annotated[RedisKVStoreConfig, Tag(KVStoreType.redis.value)],
        Annotated[SqliteKVStoreConfig, Tag(KVStoreType.sqlite.value)],
        Annotated[PostgresKVStoreConfig, Tag(KVStoreType.postgres.value)],
    ],
    Discriminator(
        _store_kind,
        custom_error_type="invalid_kvstore_type",
        custom_error_message="`type` must be one of sqlite, redis, postgres",
    ),
]

__all__ = [
    "CommonConfig",
    "KVStoreConfig",
    "KVStoreType",
    "PostgresKVStoreConfig",
    "RedisKVStoreConfig",
    "SqliteKVStoreConfig",
    "default_sqlite_path",
]

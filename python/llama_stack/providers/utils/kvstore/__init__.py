"""Key-value store settings (``KVStoreConfig`` and its three kinds)."""

from .config import (
    CommonConfig,
    KVStoreConfig,
    KVStoreType,
    PostgresKVStoreConfig,
    RedisKVStoreConfig,
    SqliteKVStoreConfig,
    default_sqlite_path,
)

__all__ = [
    "CommonConfig",
    "KVStoreConfig",
    "KVStoreType",
    "PostgresKVStoreConfig",
    "RedisKVStoreConfig",
    "SqliteKVStoreConfig",
    "default_sqlite_path",
]

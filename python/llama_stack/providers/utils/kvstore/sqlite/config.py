"""Settings of a SQLite table used as a control-plane store."""

from llama_models.schema_utils import json_schema_type
from pydantic import BaseModel, Field


@json_schema_type
class SqliteControlPlaneConfig(BaseModel):
    """One table of one SQLite file."""

    db_path: str = Field(description="Path of the SQLite file")
    table_name: str = Field(
        default="llamastack_control_plane",
        description="Table holding the keys and values",
    )

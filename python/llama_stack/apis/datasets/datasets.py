"""Datasets API: tabular data sets for training and evaluation, stored under a uuid.

The routes are part of the wire contract only; no provider implements them.
"""

from enum import Enum
from typing import Any, Dict, Optional, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import URL
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel


@json_schema_type
class TrainEvalDatasetColumnType(Enum):
    dialog = "dialog"
    text = "text"
    media = "media"
    number = "number"
    json = "json"


@json_schema_type
class TrainEvalDataset(BaseModel):
    """A data set for training or evaluating a model: typed columns over content at a URL."""

    columns: Dict[str, TrainEvalDatasetColumnType]
    content_url: URL
    metadata: Optional[Dict[str, Any]] = None


@json_schema_type
class CreateDatasetRequest(BaseModel):
    """Body of ``POST /datasets/create``."""

    uuid: str
    dataset: TrainEvalDataset


@json_schema_type
class DeleteDatasetRequest(BaseModel):
    """Body of ``POST /datasets/delete``."""

    dataset_uuid: str


@runtime_checkable
class Datasets(Protocol):
    @webmethod(route="/datasets/create", method="POST")
    def create_dataset(
        self,
        uuid: str,
        dataset: TrainEvalDataset,
    ) -> None: ...

    @webmethod(route="/datasets/get", method="GET")
    def get_dataset(
        self,
        dataset_uuid: str,
    ) -> TrainEvalDataset: ...

    @webmethod(route="/datasets/delete", method="POST")
    def delete_dataset(
        self,
        dataset_uuid: str,
    ) -> None: ...

"""Telemetry API: log events (messages, metrics, span boundaries) and read back traces."""

from datetime import datetime
from enum import Enum
from typing import Any, Dict, Literal, Optional, Protocol, Union, runtime_checkable

from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field
from typing_extensions import Annotated


@json_schema_type
class SpanStatus(Enum):
    OK = "ok"
    ERROR = "error"


@json_schema_type
class Span(BaseModel):
    span_id: str
    trace_id: str
    parent_span_id: Optional[str] = None
    name: str
    start_time: datetime
    end_time: Optional[datetime] = None
    attributes: Optional[Dict[str, Any]] = Field(default_factory=dict)


@json_schema_type
class Trace(BaseModel):
    trace_id: str
    root_span_id: str
    start_time: datetime
    end_time: Optional[datetime] = None


@json_schema_type
class EventType(Enum):
    UNSTRUCTURED_LOG = "unstructured_log"
    STRUCTURED_LOG = "structured_log"
    METRIC = "metric"


@json_schema_type
class LogSeverity(Enum):
    VERBOSE = "verbose"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    CRITICAL = "critical"


class EventCommon(BaseModel):
    """Fields every telemetry event carries: where it belongs in a trace and when it happened."""

    trace_id: str
    span_id: str
    timestamp: datetime
    attributes: Optional[Dict[str, Any]] = Field(default_factory=dict)


@json_schema_type
class UnstructuredLogEvent(EventCommon):
    type: Literal["unstructured_log"] = "unstructured_log"
    message: str
    severity: LogSeverity


@json_schema_type
class MetricEvent(EventCommon):
    type: Literal["metric"] = "metric"
    metric: str
    value: Union[int, float]
    unit: str


@json_schema_type
class StructuredLogType(Enum):
    SPAN_START = "span_start"
    SPAN_END = "span_end"


@json_schema_type
class SpanStartPayload(BaseModel):
    type: Literal["span_start"] = "span_start"
    name: str
    parent_span_id: Optional[str] = None


@json_schema_type
class SpanEndPayload(BaseModel):
    type: Literal["span_end"] = "span_end"
    status: SpanStatus


StructuredLogPayload = Annotated[
    Union[SpanStartPayload, SpanEndPayload],
    Field(discriminator="type"),
]


@json_schema_type
class StructuredLogEvent(EventCommon):
    type: Literal["structured_log"] = "structured_log"
    payload: StructuredLogPayload


Event = Annotated[
    Union[UnstructuredLogEvent, MetricEvent, StructuredLogEvent],
    Field(discriminator="type"),
]


@json_schema_type
class LogEventRequest(BaseModel):
    """Body of ``POST /telemetry/log_event``."""

    event: Event


@runtime_checkable
class Telemetry(Protocol):
    @webmethod(route="/telemetry/log_event", method="POST")
    async def log_event(self, event: Event) -> None: ...

    @webmethod(route="/telemetry/get_trace", method="GET")
    async def get_trace(self, trace_id: str) -> Trace: ...

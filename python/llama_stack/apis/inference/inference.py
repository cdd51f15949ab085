"""Inference API: text and chat completion, batch variants and embeddings.

Message, tool, sampling and media types come from ``llama_models`` and are re-exported here,
together with the model registry types, so ``from llama_stack.apis.inference import *`` gives
everything a caller needs.
"""

from enum import Enum
from typing import AsyncIterator, List, Literal, Optional, Protocol, Union, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import (
    CompletionMessage,
    InterleavedTextMedia,
    Message,
    SamplingParams,
    StopReason,
    TokenLogProbs,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolPromptFormat,
)
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, Field
from typing_extensions import Annotated

from llama_stack.apis.models import *  # noqa: F403
from llama_stack.apis.models import ModelDef


class LogProbConfig(BaseModel):
    """Asks for per-token log probabilities of the ``top_k`` most likely tokens."""

    top_k: Optional[int] = 0


@json_schema_type
class QuantizationType(Enum):
    bf16 = "bf16"
    fp8 = "fp8"


@json_schema_type
class Fp8QuantizationConfig(BaseModel):
    type: Literal["fp8"] = "fp8"


@json_schema_type
class Bf16QuantizationConfig(BaseModel):
    type: Literal["bf16"] = "bf16"


QuantizationConfig = Annotated[
    Union[Bf16QuantizationConfig, Fp8QuantizationConfig],
    Field(discriminator="type"),
]


@json_schema_type
class ChatCompletionResponseEventType(Enum):
    start = "start"
    complete = "complete"
    progress = "progress"


@json_schema_type
class ToolCallParseStatus(Enum):
    started = "started"
    in_progress = "in_progress"
    failure = "failure"
    success = "success"


@json_schema_type
class ToolCallDelta(BaseModel):
    """Streaming progress of a tool call: raw text while parsing, the parsed call at the end."""

    content: Union[str, ToolCall]
    parse_status: ToolCallParseStatus


@json_schema_type
class ChatCompletionResponseEvent(BaseModel):
    """One event of a streamed chat completion."""

    event_type: ChatCompletionResponseEventType
    delta: Union[str, ToolCallDelta]
    logprobs: Optional[List[TokenLogProbs]] = None
    stop_reason: Optional[StopReason] = None


@json_schema_type
class CompletionRequest(BaseModel):
    """Body of ``POST /inference/completion``."""

    model: str
    content: InterleavedTextMedia
    sampling_params: Optional[SamplingParams] = Field(default_factory=SamplingParams)
    stream: Optional[bool] = False
    logprobs: Optional[LogProbConfig] = None


@json_schema_type
class CompletionResponse(BaseModel):
    """Result of a non-streamed text completion."""

    completion_message: CompletionMessage
    logprobs: Optional[List[TokenLogProbs]] = None


@json_schema_type
class CompletionResponseStreamChunk(BaseModel):
    """One piece of a streamed text completion."""

    delta: str
    stop_reason: Optional[StopReason] = None
    logprobs: Optional[List[TokenLogProbs]] = None


@json_schema_type
class BatchCompletionRequest(BaseModel):
    """Body of ``POST /batch_inference/completion``."""

    model: str
    content_batch: List[InterleavedTextMedia]
    sampling_params: Optional[SamplingParams] = Field(default_factory=SamplingParams)
    logprobs: Optional[LogProbConfig] = None


@json_schema_type
class BatchCompletionResponse(BaseModel):
    """One completion per input of a batch, in input order."""

    completion_message_batch: List[CompletionMessage]


@json_schema_type
class ChatCompletionRequest(BaseModel):
    """Body of ``POST /inference/chat_completion``."""

    model: str
    messages: List[Message]
    sampling_params: Optional[SamplingParams] = Field(default_factory=SamplingParams)
    # Tools the model may call in this request (zero-shot; nothing is registered beforehand).
    tools: Optional[List[ToolDefinition]] = Field(default_factory=list)
    tool_choice: Optional[ToolChoice] = Field(default=ToolChoice.auto)
    tool_prompt_format: Optional[ToolPromptFormat] = Field(default=ToolPromptFormat.json)
    stream: Optional[bool] = False
    logprobs: Optional[LogProbConfig] = None


@json_schema_type
class ChatCompletionResponseStreamChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    event: ChatCompletionResponseEvent


@json_schema_type
class ChatCompletionResponse(BaseModel):
    """Result of a non-streamed chat completion."""

    completion_message: CompletionMessage
    logprobs: Optional[List[TokenLogProbs]] = None


@json_schema_type
class BatchChatCompletionRequest(BaseModel):
    """Body of ``POST /batch_inference/chat_completion``."""

    model: str
    messages_batch: List[List[Message]]
    sampling_params: Optional[SamplingParams] = Field(default_factory=SamplingParams)
    tools: Optional[List[ToolDefinition]] = Field(default_factory=list)
    tool_choice: Optional[ToolChoice] = Field(default=ToolChoice.auto)
    tool_prompt_format: Optional[ToolPromptFormat] = Field(default=ToolPromptFormat.json)
    logprobs: Optional[LogProbConfig] = None


@json_schema_type
class BatchChatCompletionResponse(BaseModel):
    """One assistant message per conversation of a batch, in input order."""

    completion_message_batch: List[CompletionMessage]


@json_schema_type
class EmbeddingsRequest(BaseModel):
    """Body of ``POST /inference/embeddings``."""

    model: str
    contents: List[InterleavedTextMedia]


@json_schema_type
class EmbeddingsResponse(BaseModel):
    """One embedding vector per input, in input order."""

    embeddings: List[List[float]]


class ModelStore(Protocol):
    """Lookup of registered models, handed to inference providers by the stack."""

    def get_model(self, identifier: str) -> ModelDef: ...


@runtime_checkable
class Inference(Protocol):
    model_store: ModelStore

    # With stream=True the result is an async iterator of chunks, otherwise a single response.
    @webmethod(route="/inference/completion", method="POST")
    async def completion(
        self,
        model: str,
        content: InterleavedTextMedia,
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        stream: Optional[bool] = False,
        logprobs: Optional[LogProbConfig] = None,
    ) -> Union[CompletionResponse, AsyncIterator[CompletionResponseStreamChunk]]: ...

    @webmethod(route="/inference/chat_completion", method="POST")
    async def chat_completion(
        self,
        model: str,
        messages: List[Message],
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        tools: Optional[List[ToolDefinition]] = None,
        tool_choice: Optional[ToolChoice] = ToolChoice.auto,
        tool_prompt_format: Optional[ToolPromptFormat] = ToolPromptFormat.json,
        stream: Optional[bool] = False,
        logprobs: Optional[LogProbConfig] = None,
    ) -> Union[ChatCompletionResponse, AsyncIterator[ChatCompletionResponseStreamChunk]]: ...

    @webmethod(route="/inference/embeddings", method="POST")
    async def embeddings(
        self,
        model: str,
        contents: List[InterleavedTextMedia],
    ) -> EmbeddingsResponse: ...

"""Batch inference API: many completions in one request.

The request and response types are the ones defined next to the inference API (re-exported
here), so a batch request validated through either module is the same class.
"""

from typing import List, Optional, Protocol, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import (
    InterleavedTextMedia,
    Message,
    SamplingParams,
    ToolChoice,
    ToolDefinition,
    ToolPromptFormat,
)
from llama_models.schema_utils import webmethod

from llama_stack.apis.inference import *  # noqa: F403
from llama_stack.apis.inference import (
    BatchChatCompletionResponse,
    BatchCompletionResponse,
    LogProbConfig,
)


@runtime_checkable
class BatchInference(Protocol):
    @webmethod(route="/batch_inference/completion", method="POST")
    async def batch_completion(
        self,
        model: str,
        content_batch: List[InterleavedTextMedia],
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        logprobs: Optional[LogProbConfig] = None,
    ) -> BatchCompletionResponse: ...

    @webmethod(route="/batch_inference/chat_completion", method="POST")
    async def batch_chat_completion(
        self,
        model: str,
        messages_batch: List[List[Message]],
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        tools: Optional[List[ToolDefinition]] = None,
        tool_choice: Optional[ToolChoice] = ToolChoice.auto,
        tool_prompt_format: Optional[ToolPromptFormat] = ToolPromptFormat.json,
        logprobs: Optional[LogProbConfig] = None,
    ) -> BatchChatCompletionResponse: ...

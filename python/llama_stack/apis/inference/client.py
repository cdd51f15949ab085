"""A small HTTP client of a stack's inference API, and a command line to try a server::

    python -m llama_stack.apis.inference.client HOST PORT [--stream false] [--model M] [--logprobs]
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Dict, List, Optional, Union

from llama_models.llama3.api.datatypes import (
    URL,
    ImageMedia,
    InterleavedTextMedia,
    Message,
    SamplingParams,
    ToolChoice,
    ToolDefinition,
    ToolPromptFormat,
    UserMessage,
)

from llama_stack.apis.inference.event_logger import EventLogger
from llama_stack.apis.inference.inference import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseStreamChunk,
    CompletionRequest,
    CompletionResponse,
    CompletionResponseStreamChunk,
    EmbeddingsResponse,
    Inference,
    LogProbConfig,
)
from llama_stack.distribution.utils.client import ProviderHttpClient, encodable_dict
from llama_stack.distribution.utils.command_line import cprint, run
from llama_stack.providers.datatypes import RemoteProviderConfig

__all__ = ["InferenceClient", "get_client_impl", "encodable_dict", "main"]


async def get_client_impl(config: RemoteProviderConfig, _deps: Any) -> Inference:
    return InferenceClient(config.url)


class InferenceClient(ProviderHttpClient, Inference):
    """Calls ``/inference/*`` of the server at ``base_url``."""

    def completion(  # type: ignore[override]
        self,
        model: str,
        content: InterleavedTextMedia,
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        stream: Optional[bool] = False,
        logprobs: Optional[LogProbConfig] = None,
    ) -> Any:
        request = CompletionRequest(
            model=model, content=content, sampling_params=sampling_params, stream=stream, logprobs=logprobs
        )
        if stream:
            return self._stream("/inference/completion", request, CompletionResponseStreamChunk)
        return self._post("/inference/completion", request, CompletionResponse)

    def chat_completion(  # type: ignore[override]
        self,
        model: str,
        messages: List[Message],
        sampling_params: Optional[SamplingParams] = SamplingParams(),
        tools: Optional[List[ToolDefinition]] = None,
        tool_choice: Optional[ToolChoice] = ToolChoice.auto,
        tool_prompt_format: Optional[ToolPromptFormat] = ToolPromptFormat.json,
        stream: Optional[bool] = False,
        logprobs: Optional[LogProbConfig] = None,
    ) -> Any:
        """An awaitable ``ChatCompletionResponse``, or with ``stream=True`` an async iterator of
        ``ChatCompletionResponseStreamChunk``."""
        request = ChatCompletionRequest(
            model=model,
            messages=messages,
            sampling_params=sampling_params,
            tools=tools or [],
            tool_choice=tool_choice,
            tool_prompt_format=tool_prompt_format,
            stream=stream,
            logprobs=logprobs,
        )
        if stream:
            return self._stream("/inference/chat_completion", request, ChatCompletionResponseStreamChunk)
        return self._post("/inference/chat_completion", request, ChatCompletionResponse)

    async def embeddings(self, model: str, contents: List[InterleavedTextMedia]) -> EmbeddingsResponse:
        body = {"model": model, "contents": encodable_dict(contents)}
        return await self._post("/inference/embeddings", body, EmbeddingsResponse)

    async def _post(self, route: str, request: Union[Any, Dict[str, Any]], result: Any) -> Any:
        return result(**await self._post_json(route, encodable_dict(request)))

    async def _stream(self, route: str, request: Any, chunk: Any) -> AsyncIterator[Any]:
        async for event in self._stream_events(route, encodable_dict(request)):
            yield chunk(**event)


async def run_main(host: str, port: int, stream: bool, model: Optional[str], logprobs: bool) -> None:
    client = InferenceClient(f"http://{host}:{port}")
    model = model or "Llama3.1-8B-Instruct"
    message = UserMessage(content="hello world, write me a 2 sentence poem about the moon")
    cprint(f"User>{message.content}", "green")
    iterator = client.chat_completion(
        model=model,
        messages=[message],
        stream=stream,
        logprobs=LogProbConfig(top_k=1) if logprobs else None,
    )
    if logprobs:
        if stream:
            async for chunk in iterator:
                cprint(f"Response: {chunk}", "red")
        else:
            cprint(f"Response: {await iterator}", "red")
        return
    async for log in EventLogger().log(iterator):
        log.print()


async def run_mm_main(host: str, port: int, stream: bool, path: Optional[str], model: Optional[str]) -> None:
    client = InferenceClient(f"http://{host}:{port}")
    model = model or "Llama3.2-11B-Vision-Instruct"
    message = UserMessage(
        content=[ImageMedia(image=URL(uri=f"file://{path}")), "Describe this image in two sentences"],
    )
    cprint(f"User>{message.content}", "green")
    iterator = client.chat_completion(model=model, messages=[message], stream=stream)
    async for log in EventLogger().log(iterator):
        log.print()


def main(
    host: str,
    port: int,
    stream: bool = True,
    mm: bool = False,
    logprobs: bool = False,
    file: Optional[str] = None,
    model: Optional[str] = None,
) -> None:
    if mm:
        asyncio.run(run_mm_main(host, port, stream, file, model))
    else:
        asyncio.run(run_main(host, port, stream, model, logprobs))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.inference.client"))

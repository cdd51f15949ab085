"""A small HTTP client of a stack's agents API, and a command line that runs an agent::

    python -m llama_stack.apis.agents.client HOST PORT RUN_TYPE [--model M]

``RUN_TYPE`` is ``tools_llama_3_1``, ``tools_llama_3_2`` or ``rag_llama_3_2``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, List, Optional

from llama_models.llama3.api.datatypes import (
    URL,
    SamplingParams,
    ToolChoice,
    ToolParamDefinition,
    ToolPromptFormat,
    UserMessage,
)

from llama_stack.apis.agents.agents import (
    AgentConfig,
    AgentCreateResponse,
    Agents,
    AgentSessionCreateResponse,
    AgentTurnCreateRequest,
    AgentTurnResponseStreamChunk,
    Attachment,
    CodeInterpreterToolDefinition,
    FunctionCallToolDefinition,
    MemoryToolDefinition,
    SearchEngineType,
    SearchToolDefinition,
    WolframAlphaToolDefinition,
)
from llama_stack.apis.agents.event_logger import EventLogger
from llama_stack.distribution.utils.client import HttpApiClient, encodable_dict
from llama_stack.distribution.utils.command_line import cprint, run
from llama_stack.providers.datatypes import RemoteProviderConfig

__all__ = ["AgentsClient", "get_client_impl", "main"]


async def get_client_impl(config: RemoteProviderConfig, _deps: Any) -> Agents:
    return AgentsClient(config.url)


class AgentsClient(HttpApiClient, Agents):
    """Calls ``/agents/*`` of the server at ``base_url``."""

    async def create_agent(self, agent_config: AgentConfig) -> AgentCreateResponse:
        j = await self._post_json("/agents/create", {"agent_config": encodable_dict(agent_config)})
        return AgentCreateResponse(**j)

    async def create_agent_session(self, agent_id: str, session_name: str) -> AgentSessionCreateResponse:
        j = await self._post_json("/agents/session/create", {"agent_id": agent_id, "session_name": session_name})
        return AgentSessionCreateResponse(**j)

    def create_agent_turn(  # type: ignore[override]
        self, request: Optional[AgentTurnCreateRequest] = None, **fields: Any
    ) -> Any:
        """The turn's stream of ``AgentTurnResponseStreamChunk`` (an async iterator).

        Takes an ``AgentTurnCreateRequest``, or its fields as keyword arguments. Only streamed
        turns exist here: a request without ``stream=True`` raises ``NotImplementedError``.
        """
        if request is None:
            request = AgentTurnCreateRequest(**fields)
        elif fields:
            raise TypeError("give either an AgentTurnCreateRequest or its fields, not both")
        if not request.stream:
            raise NotImplementedError("only streamed agent turns are supported: pass stream=True")
        return self._stream_agent_turn(request)

    async def _stream_agent_turn(self, request: AgentTurnCreateRequest) -> AsyncIterator[AgentTurnResponseStreamChunk]:
        async for event in self._stream_events("/agents/turn/create", encodable_dict(request)):
            yield AgentTurnResponseStreamChunk(**event)


async def _run_agent(
    api: AgentsClient,
    model: str,
    tool_definitions: List[Any],
    tool_prompt_format: ToolPromptFormat,
    user_prompts: List[str],
    attachments: Optional[List[Attachment]] = None,
) -> None:
    agent_config = AgentConfig(
        model=model,
        instructions="You are a helpful assistant",
        sampling_params=SamplingParams(temperature=0.6, top_p=0.9),
        tools=tool_definitions,
        tool_choice=ToolChoice.auto,
        tool_prompt_format=tool_prompt_format,
        enable_session_persistence=False,
    )
    agent = await api.create_agent(agent_config)
    session = await api.create_agent_session(agent_id=agent.agent_id, session_name="test_session")
    for content in user_prompts:
        cprint(f"User> {content}", color="white", attrs=["bold"])
        iterator = api.create_agent_turn(
            AgentTurnCreateRequest(
                agent_id=agent.agent_id,
                session_id=session.session_id,
                messages=[UserMessage(content=content)],
                attachments=attachments,
                stream=True,
            )
        )
        async for _event, log in EventLogger().log(iterator):
            if log is not None:
                log.print()


def _boiling_point_tool(celcius_type: str) -> FunctionCallToolDefinition:
    return FunctionCallToolDefinition(
        function_name="get_boiling_point",
        description="Get the boiling point of a imaginary liquids (eg. polyjuice)",
        parameters={
            "liquid_name": ToolParamDefinition(param_type="str", description="The name of the liquid", required=True),
            "celcius": ToolParamDefinition(
                param_type=celcius_type, description="Whether to return the boiling point in Celcius", required=False
            ),
        },
    )


async def run_llama_3_1(host: str, port: int, model: str = "Llama3.1-8B-Instruct") -> None:
    api = AgentsClient(f"http://{host}:{port}")
    tools: List[Any] = [
        SearchToolDefinition(engine=SearchEngineType.brave, api_key=os.getenv("BRAVE_SEARCH_API_KEY") or ""),
        WolframAlphaToolDefinition(api_key=os.getenv("WOLFRAM_ALPHA_API_KEY") or ""),
        CodeInterpreterToolDefinition(),
        _boiling_point_tool("str"),
    ]
    prompts = [
        "Who are you?",
        "what is the 100th prime number?",
        "Search web for who was 44th President of USA?",
        "Write code to check if a number is prime. Use that to check if 7 is prime",
        "What is the boiling point of polyjuicepotion ?",
    ]
    await _run_agent(api, model, tools, ToolPromptFormat.json, prompts)


async def run_llama_3_2_rag(host: str, port: int, model: str = "Llama3.2-3B-Instruct") -> None:
    api = AgentsClient(f"http://{host}:{port}")
    pages = ["memory_optimizations.rst", "chat.rst", "llama3.rst", "datasets.rst", "qat_finetune.rst", "lora_finetune.rst"]
    attachments = [
        Attachment(
            content=URL(uri=f"https://raw.githubusercontent.com/pytorch/torchtune/main/docs/source/tutorials/{page}"),
            mime_type="text/plain",
        )
        for page in pages
    ]
    tools: List[Any] = [MemoryToolDefinition(max_tokens_in_context=2048, memory_bank_configs=[])]
    prompts = ["How do I use Lora?", "Tell me briefly about llama3 and torchtune"]
    await _run_agent(api, model, tools, ToolPromptFormat.json, prompts, attachments)


async def run_llama_3_2(host: str, port: int, model: str = "Llama3.2-3B-Instruct") -> None:
    api = AgentsClient(f"http://{host}:{port}")
    tools: List[Any] = [
        _boiling_point_tool("bool"),
        FunctionCallToolDefinition(
            function_name="make_web_search",
            description="Search the web / internet for more realtime information",
            parameters={
                "query": ToolParamDefinition(param_type="str", description="the query to search for", required=True)
            },
        ),
    ]
    prompts = [
        "Who are you?",
        "what is the 100th prime number?",
        "Who was 44th President of USA?",
        "What is the boiling point of polyjuicepotion and pinkponklyjuice?",
    ]
    await _run_agent(api, model, tools, ToolPromptFormat.python_list, prompts)


RUN_TYPES = {
    "tools_llama_3_1": run_llama_3_1,
    "tools_llama_3_2": run_llama_3_2,
    "rag_llama_3_2": run_llama_3_2_rag,
}


def main(host: str, port: int, run_type: str, model: Optional[str] = None) -> None:
    if run_type not in RUN_TYPES:
        raise SystemExit(f"error: unknown run type `{run_type}`; choose one of: {', '.join(RUN_TYPES)}")
    args: List[Any] = [host, port] + ([model] if model is not None else [])
    asyncio.run(RUN_TYPES[run_type](*args))


if __name__ == "__main__":
    raise SystemExit(run(main, prog="llama_stack.apis.agents.client"))

"""Agents API: agent configuration, tools, sessions, turns, steps and the streamed turn events."""

from datetime import datetime
from enum import Enum
from typing import Any, AsyncIterator, Dict, List, Literal, Optional, Protocol, Union, runtime_checkable

from llama_models.llama3.api.datatypes import *  # noqa: F403
from llama_models.llama3.api.datatypes import (
    URL,
    CompletionMessage,
    InterleavedTextMedia,
    SamplingParams,
    ToolCall,
    ToolChoice,
    ToolParamDefinition,
    ToolPromptFormat,
    ToolResponse,
    ToolResponseMessage,
    UserMessage,
)
from llama_models.schema_utils import json_schema_type, webmethod
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Annotated

# The star imports keep `from llama_stack.apis.agents import *` handing out the message,
# inference, safety and memory types as well, which agent code written for 0.0.41 relies on.
from llama_stack.apis.common.deployment_types import *  # noqa: F403
from llama_stack.apis.inference import *  # noqa: F403
from llama_stack.apis.memory import *  # noqa: F403
from llama_stack.apis.safety import *  # noqa: F403

from llama_stack.apis.common.deployment_types import RestAPIExecutionConfig
from llama_stack.apis.inference import ToolCallDelta
from llama_stack.apis.memory_banks import MemoryBankDef, MemoryBankType
from llama_stack.apis.safety import SafetyViolation

# Messages a caller may put into a turn: its own words, or results of tools it ran itself.
TurnInputMessage = Union[UserMessage, ToolResponseMessage]


@json_schema_type
class Attachment(BaseModel):
    """A file handed to the agent with a turn, inline or by URL."""

    content: Union[InterleavedTextMedia, URL]
    mime_type: str


class AgentTool(Enum):
    brave_search = "brave_search"
    wolfram_alpha = "wolfram_alpha"
    photogen = "photogen"
    code_interpreter = "code_interpreter"

    function_call = "function_call"
    memory = "memory"


class ToolDefinitionCommon(BaseModel):
    """Shields run on a tool's input and on its output."""

    input_shields: Optional[List[str]] = Field(default_factory=list)
    output_shields: Optional[List[str]] = Field(default_factory=list)


class SearchEngineType(Enum):
    bing = "bing"
    brave = "brave"


@json_schema_type
class SearchToolDefinition(ToolDefinitionCommon):
    """Web search. The tag stays `brave_search` whatever the engine: it is the name models call."""

    type: Literal["brave_search"] = AgentTool.brave_search.value
    api_key: str
    engine: SearchEngineType = SearchEngineType.brave
    remote_execution: Optional[RestAPIExecutionConfig] = None


@json_schema_type
class WolframAlphaToolDefinition(ToolDefinitionCommon):
    type: Literal["wolfram_alpha"] = AgentTool.wolfram_alpha.value
    api_key: str
    remote_execution: Optional[RestAPIExecutionConfig] = None


@json_schema_type
class PhotogenToolDefinition(ToolDefinitionCommon):
    type: Literal["photogen"] = AgentTool.photogen.value
    remote_execution: Optional[RestAPIExecutionConfig] = None


@json_schema_type
class CodeInterpreterToolDefinition(ToolDefinitionCommon):
    type: Literal["code_interpreter"] = AgentTool.code_interpreter.value
    enable_inline_code_execution: bool = True
    remote_execution: Optional[RestAPIExecutionConfig] = None


@json_schema_type
class FunctionCallToolDefinition(ToolDefinitionCommon):
    """A tool the caller defines and, unless `remote_execution` is set, runs itself."""

    type: Literal["function_call"] = AgentTool.function_call.value
    function_name: str
    description: str
    parameters: Dict[str, ToolParamDefinition]
    remote_execution: Optional[RestAPIExecutionConfig] = None


class _MemoryBankConfigCommon(BaseModel):
    bank_id: str


class AgentVectorMemoryBankConfig(_MemoryBankConfigCommon):
    type: Literal["vector"] = MemoryBankType.vector.value


class AgentKeyValueMemoryBankConfig(_MemoryBankConfigCommon):
    type: Literal["keyvalue"] = MemoryBankType.keyvalue.value
    keys: List[str]  # the keys retrieval looks at


class AgentKeywordMemoryBankConfig(_MemoryBankConfigCommon):
    type: Literal["keyword"] = MemoryBankType.keyword.value


class AgentGraphMemoryBankConfig(_MemoryBankConfigCommon):
    type: Literal["graph"] = MemoryBankType.graph.value
    entities: List[str]  # the entities retrieval starts from


MemoryBankConfig = Annotated[
    Union[
        AgentVectorMemoryBankConfig,
        AgentKeyValueMemoryBankConfig,
        AgentKeywordMemoryBankConfig,
        AgentGraphMemoryBankConfig,
    ],
    Field(discriminator="type"),
]


class MemoryQueryGenerator(Enum):
    default = "default"
    llm = "llm"
    custom = "custom"


class DefaultMemoryQueryGeneratorConfig(BaseModel):
    """Query = the turn's messages as text, joined with `sep`."""

    type: Literal["default"] = MemoryQueryGenerator.default.value
    sep: str = " "


class LLMMemoryQueryGeneratorConfig(BaseModel):
    """Query written by `model` from the messages, prompted with `template`."""

    type: Literal["llm"] = MemoryQueryGenerator.llm.value
    model: str
    template: str


class CustomMemoryQueryGeneratorConfig(BaseModel):
    type: Literal["custom"] = MemoryQueryGenerator.custom.value


MemoryQueryGeneratorConfig = Annotated[
    Union[
        DefaultMemoryQueryGeneratorConfig,
        LLMMemoryQueryGeneratorConfig,
        CustomMemoryQueryGeneratorConfig,
    ],
    Field(discriminator="type"),
]


@json_schema_type
class MemoryToolDefinition(ToolDefinitionCommon):
    """Retrieval from memory banks before inference. With no bank configured, the session's own
    bank (filled from the turn's attachments) is used."""

    type: Literal["memory"] = AgentTool.memory.value
    memory_bank_configs: List[MemoryBankConfig] = Field(default_factory=list)
    # How the retrieval query is built from the turn's messages.
    query_generator_config: MemoryQueryGeneratorConfig = Field(
        default_factory=DefaultMemoryQueryGeneratorConfig
    )
    max_tokens_in_context: int = 4096
    max_chunks: int = 10


AgentToolDefinition = Annotated[
    Union[
        SearchToolDefinition,
        WolframAlphaToolDefinition,
        PhotogenToolDefinition,
        CodeInterpreterToolDefinition,
        FunctionCallToolDefinition,
        MemoryToolDefinition,
    ],
    Field(discriminator="type"),
]

class StepCommon(BaseModel):
    turn_id: str
    step_id: str
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None


class StepType(Enum):
    inference = "inference"
    tool_execution = "tool_execution"
    shield_call = "shield_call"
    memory_retrieval = "memory_retrieval"


@json_schema_type
class InferenceStep(StepCommon):
    """One model call and the message it produced."""

    model_config = ConfigDict(protected_namespaces=())

    step_type: Literal["inference"] = StepType.inference.value
    model_response: CompletionMessage


@json_schema_type
class ToolExecutionStep(StepCommon):
    step_type: Literal["tool_execution"] = StepType.tool_execution.value
    tool_calls: List[ToolCall]
    tool_responses: List[ToolResponse]


@json_schema_type
class ShieldCallStep(StepCommon):
    """A shield run; `violation` is absent (or null) when the shield let the content through."""

    step_type: Literal["shield_call"] = StepType.shield_call.value
    # The wire contract lists `violation` as optional, so a step without the key must read too.
    violation: Optional[SafetyViolation] = None


@json_schema_type
class MemoryRetrievalStep(StepCommon):
    step_type: Literal["memory_retrieval"] = StepType.memory_retrieval.value
    memory_bank_ids: List[str]
    inserted_context: InterleavedTextMedia


Step = Annotated[
    Union[
        InferenceStep,
        ToolExecutionStep,
        ShieldCallStep,
        MemoryRetrievalStep,
    ],
    Field(discriminator="step_type"),
]


@json_schema_type
class Turn(BaseModel):
    """One exchange: the caller's messages, the steps the agent took, and its final answer."""

    turn_id: str
    session_id: str
    input_messages: List[TurnInputMessage]
    steps: List[Step]
    output_message: CompletionMessage
    output_attachments: List[Attachment] = Field(default_factory=list)

    started_at: datetime
    completed_at: Optional[datetime] = None


@json_schema_type
class Session(BaseModel):
    """A conversation with an agent: its turns so far and the bank holding its attachments."""

    session_id: str
    session_name: str
    turns: List[Turn]
    started_at: datetime

    memory_bank: Optional[MemoryBankDef] = None


class AgentConfigCommon(BaseModel):
    sampling_params: Optional[SamplingParams] = SamplingParams()

    input_shields: Optional[List[str]] = Field(default_factory=list)
    output_shields: Optional[List[str]] = Field(default_factory=list)

    tools: Optional[List[AgentToolDefinition]] = Field(default_factory=list)
    tool_choice: Optional[ToolChoice] = Field(default=ToolChoice.auto)
    tool_prompt_format: Optional[ToolPromptFormat] = Field(
        default=ToolPromptFormat.json
    )

    max_infer_iters: int = 10


@json_schema_type
class AgentConfig(AgentConfigCommon):
    """Everything that defines an agent: model, instructions, tools and shields."""

    model: str
    instructions: str
    enable_session_persistence: bool


class AgentConfigOverridablePerTurn(AgentConfigCommon):
    instructions: Optional[str] = None


class AgentTurnResponseEventType(Enum):
    step_start = "step_start"
    step_complete = "step_complete"
    step_progress = "step_progress"

    turn_start = "turn_start"
    turn_complete = "turn_complete"


@json_schema_type
class AgentTurnResponseStepStartPayload(BaseModel):
    event_type: Literal["step_start"] = AgentTurnResponseEventType.step_start.value
    step_type: StepType
    step_id: str
    metadata: Optional[Dict[str, Any]] = Field(default_factory=dict)


@json_schema_type
class AgentTurnResponseStepCompletePayload(BaseModel):
    event_type: Literal["step_complete"] = AgentTurnResponseEventType.step_complete.value
    step_type: StepType
    step_details: Step


@json_schema_type
class AgentTurnResponseStepProgressPayload(BaseModel):
    """A piece of a running step: model text, a tool call being parsed, or tool output."""

    model_config = ConfigDict(protected_namespaces=())

    event_type: Literal["step_progress"] = AgentTurnResponseEventType.step_progress.value
    step_type: StepType
    step_id: str

    model_response_text_delta: Optional[str] = None
    tool_call_delta: Optional[ToolCallDelta] = None
    tool_response_text_delta: Optional[str] = None


@json_schema_type
class AgentTurnResponseTurnStartPayload(BaseModel):
    event_type: Literal["turn_start"] = AgentTurnResponseEventType.turn_start.value
    turn_id: str


@json_schema_type
class AgentTurnResponseTurnCompletePayload(BaseModel):
    event_type: Literal["turn_complete"] = AgentTurnResponseEventType.turn_complete.value
    turn: Turn


@json_schema_type
class AgentTurnResponseEvent(BaseModel):
    """One event of a streamed turn; `payload.event_type` tells which."""

    payload: Annotated[
        Union[
            AgentTurnResponseStepStartPayload,
            AgentTurnResponseStepProgressPayload,
            AgentTurnResponseStepCompletePayload,
            AgentTurnResponseTurnStartPayload,
            AgentTurnResponseTurnCompletePayload,
        ],
        Field(discriminator="event_type"),
    ]


@json_schema_type
class AgentCreateResponse(BaseModel):
    agent_id: str


@json_schema_type
class AgentSessionCreateResponse(BaseModel):
    session_id: str


@json_schema_type
class AgentTurnCreateRequest(AgentConfigOverridablePerTurn):
    """A turn request that may also carry per-turn overrides of the agent's configuration."""

    agent_id: str
    session_id: str

    # Tool responses come in when the caller ran a `function_call` tool on its side.
    messages: List[TurnInputMessage]
    attachments: Optional[List[Attachment]] = None

    stream: Optional[bool] = False


@json_schema_type
class AgentTurnResponseStreamChunk(BaseModel):
    """What each server-sent event of `/agents/turn/create` carries."""

    event: AgentTurnResponseEvent


@json_schema_type
class AgentStepResponse(BaseModel):
    step: Step


# Request bodies of the HTTP routes, one per route, as the wire contract names them.


@json_schema_type
class CreateAgentRequest(BaseModel):
    """Body of ``POST /agents/create``."""

    agent_config: AgentConfig


@json_schema_type
class CreateAgentSessionRequest(BaseModel):
    """Body of ``POST /agents/session/create``."""

    agent_id: str
    session_name: str


@json_schema_type
class CreateAgentTurnRequest(BaseModel):
    """Body of ``POST /agents/turn/create``."""

    agent_id: str
    session_id: str
    messages: List[TurnInputMessage]
    attachments: Optional[List[Attachment]] = None
    stream: Optional[bool] = False


@json_schema_type
class DeleteAgentsRequest(BaseModel):
    """Body of ``POST /agents/delete``."""

    agent_id: str


@json_schema_type
class DeleteAgentsSessionRequest(BaseModel):
    """Body of ``POST /agents/session/delete``."""

    agent_id: str
    session_id: str


@json_schema_type
class GetAgentsSessionRequest(BaseModel):
    """Body of ``POST /agents/session/get``; `agent_id` and `session_id` travel in the query."""

    turn_ids: Optional[List[str]] = None


@runtime_checkable
class Agents(Protocol):
    @webmethod(route="/agents/create", method="POST")
    async def create_agent(
        self,
        agent_config: AgentConfig,
    ) -> AgentCreateResponse: ...

    # A plain `def`: with stream=True the result is an async iterator of chunks, otherwise an
    # awaitable of the finished turn, so one signature cannot be `async def` for both.
    @webmethod(route="/agents/turn/create", method="POST")
    def create_agent_turn(
        self,
        agent_id: str,
        session_id: str,
        messages: List[TurnInputMessage],
        attachments: Optional[List[Attachment]] = None,
        stream: Optional[bool] = False,
    ) -> Union[Turn, AsyncIterator[AgentTurnResponseStreamChunk]]: ...

    @webmethod(route="/agents/turn/get", method="GET")
    async def get_agents_turn(
        self,
        agent_id: str,
        turn_id: str,
    ) -> Turn: ...

    @webmethod(route="/agents/step/get", method="GET")
    async def get_agents_step(
        self,
        agent_id: str,
        turn_id: str,
        step_id: str,
    ) -> AgentStepResponse: ...

    @webmethod(route="/agents/session/create", method="POST")
    async def create_agent_session(
        self,
        agent_id: str,
        session_name: str,
    ) -> AgentSessionCreateResponse: ...

    @webmethod(route="/agents/session/get", method="POST")
    async def get_agents_session(
        self,
        agent_id: str,
        session_id: str,
        turn_ids: Optional[List[str]] = None,
    ) -> Session: ...

    @webmethod(route="/agents/session/delete", method="POST")
    async def delete_agents_session(
        self,
        agent_id: str,
        session_id: str,
    ) -> None: ...

    @webmethod(route="/agents/delete", method="POST")
    async def delete_agents(
        self,
        agent_id: str,
    ) -> None: ...

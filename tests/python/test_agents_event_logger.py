"""The agent EventLogger turns a streamed turn into the lines apps print."""

from datetime import datetime

from llama_models.llama3.api.datatypes import (
    BuiltinTool,
    CompletionMessage,
    StopReason,
    ToolCall,
    ToolResponse,
    ToolResponseMessage,
    UserMessage,
)

from llama_stack.apis.agents import (
    AgentTurnResponseEvent,
    AgentTurnResponseStepCompletePayload,
    AgentTurnResponseStepProgressPayload,
    AgentTurnResponseStepStartPayload,
    AgentTurnResponseStreamChunk,
    AgentTurnResponseTurnCompletePayload,
    AgentTurnResponseTurnStartPayload,
    InferenceStep,
    MemoryRetrievalStep,
    ShieldCallStep,
    StepType,
    ToolExecutionStep,
    Turn,
)
from llama_stack.apis.agents.event_logger import EventLogger, LogEvent
from llama_stack.apis.inference import ToolCallDelta, ToolCallParseStatus
from llama_stack.apis.safety import SafetyViolation, ViolationLevel


def chunk(payload) -> AgentTurnResponseStreamChunk:
    return AgentTurnResponseStreamChunk(event=AgentTurnResponseEvent(payload=payload))


def turn_events():
    answer = CompletionMessage(content="Hello there", stop_reason=StopReason.end_of_turn)
    call = ToolCall(call_id="c1", tool_name=BuiltinTool.brave_search, arguments={"query": "obama"})
    yield chunk(AgentTurnResponseTurnStartPayload(turn_id="t1"))
    yield chunk(
        AgentTurnResponseStepCompletePayload(
            step_type=StepType.shield_call,
            step_details=ShieldCallStep(turn_id="t1", step_id="s0", violation=None),
        )
    )
    yield chunk(AgentTurnResponseStepStartPayload(step_type=StepType.inference, step_id="s1"))
    for piece in ("Hello", " there"):
        yield chunk(
            AgentTurnResponseStepProgressPayload(
                step_type=StepType.inference, step_id="s1", model_response_text_delta=piece
            )
        )
    yield chunk(
        AgentTurnResponseStepProgressPayload(
            step_type=StepType.inference,
            step_id="s1",
            tool_call_delta=ToolCallDelta(content="<function=", parse_status=ToolCallParseStatus.in_progress),
        )
    )
    yield chunk(
        AgentTurnResponseStepCompletePayload(
            step_type=StepType.inference,
            step_details=InferenceStep(turn_id="t1", step_id="s1", model_response=answer),
        )
    )
    yield chunk(
        AgentTurnResponseStepCompletePayload(
            step_type=StepType.tool_execution,
            step_details=ToolExecutionStep(
                turn_id="t1",
                step_id="s2",
                tool_calls=[call],
                tool_responses=[ToolResponse(call_id="c1", tool_name=BuiltinTool.brave_search, content="results")],
            ),
        )
    )
    yield chunk(
        AgentTurnResponseStepCompletePayload(
            step_type=StepType.memory_retrieval,
            step_details=MemoryRetrievalStep(
                turn_id="t1", step_id="s3", memory_bank_ids=["bank"], inserted_context="x" * 300
            ),
        )
    )
    yield chunk(
        AgentTurnResponseStepCompletePayload(
            step_type=StepType.shield_call,
            step_details=ShieldCallStep(
                turn_id="t1",
                step_id="s4",
                violation=SafetyViolation(
                    violation_level=ViolationLevel.ERROR, user_message="I can't answer that.", metadata={"code": "S1"}
                ),
            ),
        )
    )
    yield ToolResponseMessage(call_id="c2", tool_name="get_boiling_point", content="-100")
    yield chunk(
        AgentTurnResponseTurnCompletePayload(
            turn=Turn(
                turn_id="t1",
                session_id="sess",
                input_messages=[UserMessage(content="hi")],
                steps=[],
                output_message=answer,
                started_at=datetime(2024, 10, 10),
            )
        )
    )


async def _aiter(items):
    for item in items:
        yield item


async def collect(source, **kwargs):
    return [log async for log in EventLogger().log(source, **kwargs)]


async def test_streamed_turn_lines():
    logs = await collect(_aiter(list(turn_events())))
    assert all(isinstance(log, LogEvent) for log in logs)  # nothing to skip, `log.print()` always works
    text = "".join(str(log) + log.end for log in logs)
    assert text.startswith("shield_call> No Violation\ninference> Hello there<function=\n")
    assert "tool_execution> Tool:brave_search Args:{'query': 'obama'}\n" in text
    assert "tool_execution> Tool:brave_search Response:results\n" in text
    assert "memory_retrieval> Retrieved context from banks: ['bank'].\n====\n" + "x" * 200 + "...\n>\n" in text
    assert "shield_call> {'code': 'S1'} I can't answer that.\n" in text
    assert text.endswith("CustomTool> -100\n")
    # One header for the streamed inference step, even though both step_start and progress came.
    assert text.count("inference> ") == 1


async def test_plain_iterator_and_non_streaming_mode():
    logs = await collect(iter(list(turn_events())), stream=False)
    inference = [str(log) for log in logs if log.role == "inference"]
    assert inference == ["inference> Hello there"]


async def test_print_writes_the_line(capsys):
    (log,) = [log for log in await collect(_aiter(list(turn_events()))) if log.role == "shield_call"][:1]
    log.print()
    assert "shield_call> No Violation" in capsys.readouterr().out

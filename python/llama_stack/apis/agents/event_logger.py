"""Readable log lines from a streamed agent turn.

Typical use::

    async for log in EventLogger().log(agents.create_agent_turn(..., stream=True)):
        log.print()

Each item also unpacks as ``(event, log)``, the pairs 0.0.41's logger gave, so code written as
``async for event, log in EventLogger().log(...)`` works too; there ``log`` is None for the
turn start and turn complete events, which print nothing.

The logger reads chunks of our own models and of ``llama_stack_client`` alike: it only looks at
attribute names and compares enum members by value.
"""

from enum import Enum
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, List, Optional, Union

from llama_models.llama3.api.datatypes import ToolPromptFormat, interleaved_text_media_as_str

_cprint: Optional[Callable[..., None]]
try:
    from termcolor import cprint as _cprint
except ImportError:  # colours are a nicety; print plain text without termcolor
    _cprint = None

# Retrieved context longer than this is cut in the log line.
MAX_CONTEXT_CHARS = 200


def _plain(value: Any) -> Any:
    """An enum member as its value, anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


class LogEvent:
    """One printable piece of a turn: `role> content`, or bare content for streamed text."""

    def __init__(
        self,
        role: Optional[str] = None,
        content: Any = "",
        end: Optional[str] = "\n",
        color: str = "white",
    ):
        self.role = role
        self.content = content
        self.color = color
        self.end = "\n" if end is None else end
        # The stream event (or message) this line comes from; `silent` marks a turn event,
        # which has no line of its own.
        self.event: Any = None
        self.silent = False

    def __iter__(self) -> Iterator[Any]:
        """``(event, log)``: the source event, and this line (None for a turn event)."""
        return iter((self.event, None if self.silent else self))

    def __str__(self) -> str:
        if self.role is None:
            return f"{self.content}"
        return f"{self.role}> {self.content}"

    def __repr__(self) -> str:
        return f"LogEvent(role={self.role!r}, content={self.content!r}, end={self.end!r})"

    def print(self, flush: bool = True) -> None:
        if self.silent:
            return
        if _cprint is None:
            print(str(self), end=self.end, flush=flush)
        else:
            _cprint(str(self), color=self.color, end=self.end, flush=flush)


async def _items(source: Union[AsyncIterator[Any], Iterable[Any]]) -> AsyncIterator[Any]:
    # The sync client hands out a plain iterator, the async API an async one; accept both.
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


def _tool_name(name: Any) -> str:
    return str(_plain(name))


def _encode_tool_call(call: Any, tool_prompt_format: ToolPromptFormat) -> str:
    try:
        from llama_models.llama3.api.tool_utils import ToolUtils

        return ToolUtils.encode_tool_call(call, tool_prompt_format)
    except Exception:  # a call the encoder does not know (e.g. from a client model): show it raw
        return f"{_tool_name(call.tool_name)}({call.arguments})"


class EventLogger:
    """Turns a stream of `AgentTurnResponseStreamChunk` into `LogEvent`s."""

    async def log(
        self,
        event_generator: Union[AsyncIterator[Any], Iterable[Any]],
        stream: bool = True,
        tool_prompt_format: ToolPromptFormat = ToolPromptFormat.json,
    ) -> AsyncIterator[LogEvent]:
        source: List[Any] = [None]
        async for log in self._lines(event_generator, stream, tool_prompt_format, source):
            log.event = source[0]
            yield log

    async def _lines(
        self,
        event_generator: Union[AsyncIterator[Any], Iterable[Any]],
        stream: bool,
        tool_prompt_format: ToolPromptFormat,
        source: List[Any],
    ) -> AsyncIterator[LogEvent]:
        # Step whose inference header has been printed, so streamed text follows one header.
        open_inference_step: Optional[str] = None

        async for chunk in _items(event_generator):
            event = getattr(chunk, "event", None)
            source[0] = chunk if event is None else event
            if event is None:
                # Messages from client-side tools are mixed into the stream by tool executors;
                # a chunk with `error` and no event is how a failure mid-stream arrives.
                if _plain(getattr(chunk, "role", None)) == "ipython":
                    yield LogEvent(role="CustomTool", content=chunk.content, color="grey")
                elif getattr(chunk, "error", None) is not None:
                    yield LogEvent(role="error", content=chunk.error, color="red")
                continue

            payload = event.payload
            event_type = _plain(payload.event_type)
            if event_type in ("turn_start", "turn_complete"):
                turn = LogEvent(role=None, content="", end="")
                turn.silent = True
                yield turn
                continue

            step_type = _plain(payload.step_type)
            if step_type == "inference":
                for log in self._inference(payload, event_type, stream, tool_prompt_format, open_inference_step):
                    yield log
                if event_type == "step_complete":
                    open_inference_step = None
                elif stream:
                    open_inference_step = payload.step_id
                continue

            if event_type != "step_complete":
                continue
            details = payload.step_details
            if step_type == "shield_call":
                violation = details.violation
                if violation is None:
                    yield LogEvent(role=step_type, content="No Violation", color="magenta")
                else:
                    yield LogEvent(
                        role=step_type,
                        content=f"{violation.metadata} {violation.user_message}",
                        color="red",
                    )
            elif step_type == "tool_execution":
                for call in details.tool_calls:
                    yield LogEvent(
                        role=step_type,
                        content=f"Tool:{_tool_name(call.tool_name)} Args:{call.arguments}",
                        color="green",
                    )
                for response in details.tool_responses:
                    yield LogEvent(
                        role=step_type,
                        content=f"Tool:{_tool_name(response.tool_name)} Response:{response.content}",
                        color="green",
                    )
            elif step_type == "memory_retrieval":
                context = interleaved_text_media_as_str(details.inserted_context)
                if len(context) > MAX_CONTEXT_CHARS:
                    context = context[:MAX_CONTEXT_CHARS] + "..."
                yield LogEvent(
                    role=step_type,
                    content=f"Retrieved context from banks: {details.memory_bank_ids}.\n====\n{context}\n>",
                    color="cyan",
                )

    @staticmethod
    def _inference(
        payload: Any,
        event_type: str,
        stream: bool,
        tool_prompt_format: ToolPromptFormat,
        open_step: Optional[str],
    ) -> Iterable[LogEvent]:
        if event_type == "step_complete":
            if stream and open_step is not None:
                yield LogEvent(role=None, content="")  # ends the streamed line
                return
            # Nothing was streamed for this step: show the finished message in one line.
            response = payload.step_details.model_response
            if response.tool_calls:
                content = _encode_tool_call(response.tool_calls[0], tool_prompt_format)
            else:
                content = interleaved_text_media_as_str(response.content)
            yield LogEvent(role="inference", content=content, color="yellow")
            return
        if not stream:
            return

        if payload.step_id != open_step:
            yield LogEvent(role="inference", content="", end="", color="yellow")
        if event_type != "step_progress":
            return

        delta = payload.tool_call_delta
        if delta is not None:
            # Parsed calls show up in the tool_execution step; print only raw call text here.
            if isinstance(delta.content, str):
                yield LogEvent(role=None, content=delta.content, end="", color="cyan")
            return
        text = getattr(payload, "model_response_text_delta", None)
        if text is None:  # the name some client versions use for the same field
            text = getattr(payload, "text_delta_model_response", None)
        if text:
            yield LogEvent(role=None, content=text, end="", color="yellow")

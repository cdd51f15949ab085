"""Printable lines from a chat completion, streamed or not.

Typical use::

    async for log in EventLogger().log(inference.chat_completion(..., stream=True)):
        log.print()

A streamed answer gives ``Assistant> `` when it starts, each piece of text as it comes and a
line end when it completes; a whole response gives the prefix and its text at once. Chunks of
``llama_stack_client`` work too: only attribute names and enum values are compared.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, AsyncIterator, Optional

from llama_stack.distribution.utils.command_line import cprint

__all__ = ["EventLogger", "LogEvent"]


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


class LogEvent:
    """One printable piece of output."""

    def __init__(self, content: Any = "", end: Optional[str] = "\n", color: str = "white") -> None:
        self.content = content
        self.color = color
        self.end = "\n" if end is None else end

    def __str__(self) -> str:
        return f"{self.content}"

    def __repr__(self) -> str:
        return f"LogEvent({self.content!r}, end={self.end!r}, color={self.color!r})"

    def print(self, flush: bool = True) -> None:
        cprint(f"{self.content}", color=self.color, end=self.end, flush=flush)


def _text(delta: Any) -> str:
    """The text of a stream delta: a string, or a tool call being parsed."""
    if isinstance(delta, str):
        return delta
    content = getattr(delta, "content", None)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return str(content)


class EventLogger:
    async def log(self, event_generator: Any) -> AsyncIterator[LogEvent]:
        """Yields the log lines of each chunk or response that ``event_generator`` gives."""
        async for chunk in _aiter(event_generator):
            event = getattr(chunk, "event", None)
            if event is not None:
                kind = _value(event.event_type)
                if kind == "start":
                    yield LogEvent("Assistant> ", color="cyan", end="")
                elif kind == "progress":
                    yield LogEvent(_text(event.delta), color="yellow", end="")
                elif kind == "complete":
                    yield LogEvent("")
            else:
                message = getattr(chunk, "completion_message", None)
                content = getattr(message, "content", "") if message is not None else getattr(chunk, "content", "")
                yield LogEvent("Assistant> ", color="cyan", end="")
                yield LogEvent(content, color="yellow")


async def _aiter(source: Any) -> AsyncIterator[Any]:
    """Iterates an async iterator, an awaitable of a response, a sync iterable or one response."""
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
    elif hasattr(source, "__await__"):
        yield await source
    elif hasattr(source, "__iter__") and not hasattr(source, "model_dump"):
        for item in source:
            yield item
    else:
        yield source

"""The ``agents`` API: see :mod:`.agents`; :mod:`.event_logger` prints a streamed turn."""

from .agents import *  # noqa: F401 F403

"""The ``memory`` API: see :mod:`.memory`."""

from .memory import *  # noqa: F401 F403

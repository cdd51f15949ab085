"""The ``memory_banks`` API: see :mod:`.memory_banks`."""

from .memory_banks import *  # noqa: F401 F403

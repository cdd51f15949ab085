"""The ``safety`` API: see :mod:`.safety`."""

from .safety import *  # noqa: F401 F403

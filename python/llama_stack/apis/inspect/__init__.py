"""The ``inspect`` API: see :mod:`.inspect`."""

from .inspect import *  # noqa: F401 F403

"""The ``shields`` API: see :mod:`.shields`."""

from .shields import *  # noqa: F401 F403

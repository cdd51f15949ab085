"""The ``inference`` API: see :mod:`.inference`."""

from .inference import *  # noqa: F401 F403

"""The ``datasets`` API (declared in the wire contract, not served): see :mod:`.datasets`."""

from .datasets import *  # noqa: F401 F403

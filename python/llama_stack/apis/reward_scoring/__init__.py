"""The ``reward_scoring`` API (declared in the wire contract, not served): see :mod:`.reward_scoring`."""

from .reward_scoring import *  # noqa: F401 F403

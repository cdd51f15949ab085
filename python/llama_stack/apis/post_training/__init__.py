"""The ``post_training`` API (declared in the wire contract, not served): see :mod:`.post_training`."""

from .post_training import *  # noqa: F401 F403

"""The ``evaluations`` API (declared in the wire contract, not served): see :mod:`.evaluations`."""

from .evaluations import *  # noqa: F401 F403

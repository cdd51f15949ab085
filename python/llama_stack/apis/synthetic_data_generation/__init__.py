"""The ``synthetic_data_generation`` API (declared in the wire contract, not served): see
:mod:`.synthetic_data_generation`."""

from .synthetic_data_generation import *  # noqa: F401 F403

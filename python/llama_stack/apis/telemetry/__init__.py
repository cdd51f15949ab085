"""The ``telemetry`` API: see :mod:`.telemetry`."""

from .telemetry import *  # noqa: F401 F403

"""The ``batch_inference`` API: see :mod:`.batch_inference`."""

from .batch_inference import *  # noqa: F401 F403

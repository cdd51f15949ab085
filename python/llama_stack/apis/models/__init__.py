"""The ``models`` API: see :mod:`.models`."""

from .models import *  # noqa: F401 F403

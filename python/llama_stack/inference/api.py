"""Older name of :mod:`llama_stack.apis.inference`."""

from llama_stack.apis.inference import *  # noqa: F401 F403

"""The datasets API under the module path 0.0.41 used (``llama_stack.apis.dataset``)."""

from llama_stack.apis.datasets.datasets import *  # noqa: F401,F403

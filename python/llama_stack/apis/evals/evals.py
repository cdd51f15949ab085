"""The evaluations API under the module path 0.0.41 used (``llama_stack.apis.evals``)."""

from llama_stack.apis.evaluations.evaluations import *  # noqa: F401,F403

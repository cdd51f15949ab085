"""Llama Stack 0.0.41 with a Rust core.

Importing the package is cheap: the API modules (``llama_stack.apis.*``) load their pydantic
models on first import, and the compiled core (``llama_stack._core``) loads only when used.
"""

__version__ = "0.0.41"

"""Llama Stack 0.0.41 with a Rust core.

Importing the package is cheap: the API modules (``llama_stack.apis.*``) load their pydantic
models on first import, and the compiled core (``llama_stack._core``) loads only when used.
"""

import os as _os
import sys as _sys

__version__ = "0.0.41"

# The core runs this interpreter for what it finds through Python (pip fetches of the embedded
# models, the Llama 3 tokenizer shipped in llama_models).
if _sys.executable:
    _os.environ.setdefault("LLAMA_STACK_PYTHON", _sys.executable)

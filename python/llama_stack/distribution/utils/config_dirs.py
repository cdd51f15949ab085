"""Folders under the stack's config dir (``$LLAMA_STACK_CONFIG_DIR``, default ``~/.llama``),
read once at import as 0.0.41 did."""

import os
from pathlib import Path

LLAMA_STACK_CONFIG_DIR = Path(os.getenv("LLAMA_STACK_CONFIG_DIR") or os.path.expanduser("~/.llama/"))

# Where model files are kept, one folder per model id.
DEFAULT_CHECKPOINT_DIR = LLAMA_STACK_CONFIG_DIR / "checkpoints"
# Run configs written by `llama stack build`.
BUILDS_BASE_DIR = LLAMA_STACK_CONFIG_DIR / "builds"
# Per-stack state (registries, databases).
RUNTIME_BASE_DIR = LLAMA_STACK_CONFIG_DIR / "runtime"
DISTRIBS_BASE_DIR = LLAMA_STACK_CONFIG_DIR / "distributions"

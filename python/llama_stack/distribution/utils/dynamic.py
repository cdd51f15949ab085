"""Classes named by dotted path, as provider specs name their config and validator classes."""

import importlib
from typing import Any


def instantiate_class_type(fully_qualified_name: str) -> Any:
    """The class (or any attribute) at ``package.module.Name``."""
    module_name, _, name = fully_qualified_name.rpartition(".")
    if not module_name:
        raise ValueError(f"`{fully_qualified_name}` is not a dotted path `module.Name`")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"module `{module_name}` has no `{name}`") from None

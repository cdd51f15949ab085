"""Helpers shared by the ``llama`` commands: errors, API names, where files live, YAML I/O.

Nothing here imports more than the standard library at module level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Every API of the stack, in the order upstream lists them.
ALL_APIS = (
    "inference",
    "safety",
    "agents",
    "memory",
    "telemetry",
    "models",
    "shields",
    "memory_banks",
    "inspect",
)

# The APIs a run config names providers for; the others the stack builds by itself.
PROVIDABLE_APIS = ("inference", "safety", "agents", "memory", "telemetry")

# For the APIs the stack builds itself: which configurable API feeds them.
ROUTED_BY = {"models": "inference", "shields": "safety", "memory_banks": "memory"}

BUILT_IN_DEFAULT = "built-in default"


class CliError(Exception):
    """A failure to report as one line on stderr, with a given exit code (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def config_dir() -> Path:
    """The base folder: ``$LLAMA_STACK_CONFIG_DIR``, else ``~/.llama``."""
    env = os.environ.get("LLAMA_STACK_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".llama"


def builds_dir() -> Path:
    return config_dir() / "builds"


def runtime_dir() -> Path:
    return config_dir() / "runtime"


def templates_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "templates"


def template_path(name: str) -> Path:
    return templates_dir() / f"{name}-run.yaml"


def template_names() -> list[str]:
    suffix = "-run.yaml"
    return sorted(p.name[: -len(suffix)] for p in templates_dir().glob(f"*{suffix}"))


def resolve_run_config(config: str) -> Path:
    """A run config given as a path, or as the name of a build (``builds/<name>-run.yaml``)."""
    path = Path(config).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise CliError(f"run config `{path}` is not a file")
    looks_like_name = os.sep not in config and not config.endswith((".yaml", ".yml", ".json"))
    if looks_like_name:
        built = builds_dir() / f"{config}-run.yaml"
        if built.is_file():
            return built
        template = config if config in template_names() else "default"
        raise CliError(
            f"no run config named `{config}`: neither the file `{path}` nor `{built}` exists; "
            f"create one with `llama stack build --template {template} --name {config}`"
        )
    raise CliError(f"run config `{path}` does not exist")


def read_text(path: Path, what: str = "run config") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot read {what} `{path}`: {e.strerror or e}") from None


def load_yaml_mapping(text: str, origin: str) -> dict[str, Any]:
    """Parses YAML that must hold a mapping at the top; errors name the file and the line."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise CliError(f"cannot parse `{origin}`{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CliError(f"`{origin}` must hold a mapping at the top level, found {type(data).__name__}")
    return data


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def write_text(path: Path, text: str, what: str = "run config") -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        # Replace in one step so an interrupted write never leaves half a config behind.
        tmp.replace(path)
    except OSError as e:
        raise CliError(f"cannot write {what} `{path}`: {e.strerror or e}") from None


def core() -> Any:
    """The compiled core (``llama_stack._core``), with a readable error when it is missing."""
    import importlib

    try:
        _core = importlib.import_module("llama_stack._core")
    except ImportError as e:
        raise CliError(
            f"the compiled core `llama_stack._core` cannot be loaded ({e}); "
            "reinstall the package (`pip install llama-stack-rs` or `maturin develop`)"
        ) from None
    return _core


def core_function(name: str) -> Any:
    func = getattr(core(), name, None)
    if func is None:
        raise CliError(f"this build of `llama_stack._core` has no `{name}`; reinstall the package")
    return func

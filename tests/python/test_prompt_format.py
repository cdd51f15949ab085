"""Golden tests of the Llama prompt format in the Rust core against ``llama_models`` 0.0.41.

The reference side is built here from ``llama_models`` itself: its prompt generators (with a
fixed date) assembled the way the stack's prompt adapter assembles them, its ``ChatFormat`` for
the dialog encoding and reply parsing, and its tiktoken ``Tokenizer`` for token ids.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import os
import random
import subprocess
import sys
import warnings
from datetime import date
from typing import Any, Optional

import pytest
from pydantic import TypeAdapter

from llama_stack import _core

llama_models = pytest.importorskip("llama_models")

import llama_models.llama3.api.chat_format as chat_format_module  # noqa: E402
from llama_models.datatypes import ModelFamily, is_multimodal  # noqa: E402
from llama_models.llama3.api.chat_format import ChatFormat  # noqa: E402
from llama_models.llama3.api.datatypes import (  # noqa: E402
    BuiltinTool,
    Message,
    StopReason,
    SystemMessage,
    ToolDefinition,
    ToolPromptFormat,
    UserMessage,
    interleaved_text_media_as_str,
)
from llama_models.llama3.api.tokenizer import Tokenizer  # noqa: E402
from llama_models.llama3.prompt_templates import (  # noqa: E402
    BuiltinToolGenerator,
    FunctionTagCustomToolGenerator,
    JsonCustomToolGenerator,
    PythonListCustomToolGenerator,
    SystemDefaultGenerator,
)
from llama_models.llama3.prompt_templates.base import PromptTemplate  # noqa: E402
from llama_models.sku_list import resolve_model  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "render_chat_prompt"), reason="llama_stack._core was built without the prompt module"
)

TODAY = date(2024, 9, 25)
TODAY_ARG = TODAY.isoformat()
TOKENIZER_PATH = os.path.join(os.path.dirname(chat_format_module.__file__), "tokenizer.model")
IMAGE_ID = 128011
VISION_ID = 128256

M31 = "Llama3.1-8B-Instruct"
M31_405 = "Llama3.1-405B-Instruct:bf16-mp8"
MV = "Llama3.2-11B-Vision-Instruct"
M32 = "Llama3.2-3B-Instruct"
M32_1B = "Llama3.2-1B-Instruct"
GUARD = "Llama-Guard-3-8B"
UNKNOWN = "my-fine-tune"

MESSAGE = TypeAdapter(Message)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.get_instance()


@pytest.fixture(scope="module")
def formatter(tokenizer: Tokenizer) -> ChatFormat:
    return ChatFormat(tokenizer)


@pytest.fixture(autouse=True)
def images_stay_references(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reference encoder loads every image to hand it to the vision model; the prompt text
    # and token ids do not depend on the pixels, so the images are left as they are.
    monkeypatch.setattr(chat_format_module, "interleaved_text_media_localize", lambda c: c)


# --- the reference: the stack's prompt adapter, rebuilt on llama_models --------------------------


def ref_system_default() -> str:
    template = SystemDefaultGenerator().gen()
    return PromptTemplate(template.template, {"today": TODAY.strftime("%d %B %Y")}).render()


def _split_system(messages: list[Any], tool_choice: str) -> tuple[Optional[Any], list[Any]]:
    assert tool_choice == "auto", "Only `ToolChoice.auto` supported"
    existing = list(messages)
    system = existing.pop(0) if existing[0].role == "system" else None
    assert existing[0].role != "system", "Should only have 1 system message"
    return system, existing


def ref_augment(request: dict[str, Any], model: str) -> list[Any]:
    messages = [MESSAGE.validate_python(m) for m in request["messages"]]
    tools = [ToolDefinition(**t) for t in request.get("tools", [])]
    fmt = ToolPromptFormat(request.get("tool_prompt_format", "json"))
    tool_choice = request.get("tool_choice", "auto")
    resolved = resolve_model(model)
    if resolved is None:
        return messages
    family = resolved.model_family
    if family == ModelFamily.llama3_1 or (family == ModelFamily.llama3_2 and is_multimodal(resolved.core_model_id)):
        system, rest = _split_system(messages, tool_choice)
        content = ""
        if tools:
            content += BuiltinToolGenerator().gen(tools).render() + "\n"
        content += ref_system_default()
        if system is not None:
            content += "\n"
            if isinstance(system.content, str):
                content += system.content
            elif isinstance(system.content, list):
                content += "\n".join(c if isinstance(c, str) else "<media>" for c in system.content)
        out: list[Any] = [SystemMessage(content=content)]
        custom = [t for t in tools if isinstance(t.tool_name, str)]
        if custom:
            if fmt == ToolPromptFormat.json:
                gen: Any = JsonCustomToolGenerator()
            elif fmt == ToolPromptFormat.function_tag:
                gen = FunctionTagCustomToolGenerator()
            else:
                raise ValueError(f"Non supported ToolPromptFormat {fmt}")
            out.append(UserMessage(content=gen.gen(custom).render()))
        return out + rest
    if family == ModelFamily.llama3_2:
        system, rest = _split_system(messages, tool_choice)
        content = ""
        builtin = [t for t in tools if not isinstance(t.tool_name, str)]
        custom = [t for t in tools if isinstance(t.tool_name, str)]
        if builtin:
            content += BuiltinToolGenerator().gen(builtin).render() + "\n"
        if custom:
            if fmt != ToolPromptFormat.python_list:
                raise ValueError(f"Non supported ToolPromptFormat {fmt}")
            content += PythonListCustomToolGenerator().gen(custom).render() + "\n"
        if system is not None:
            content += interleaved_text_media_as_str(system.content, sep="\n")
        return [SystemMessage(content=content), *rest]
    return messages


def ref_tokens(formatter: ChatFormat, messages: list[Any], fmt: str) -> list[int]:
    tokens = formatter.encode_dialog_prompt(messages, ToolPromptFormat(fmt)).tokens
    # The model input carries images as the vision id; the prompt text has the <|image|> token.
    return [IMAGE_ID if t == VISION_ID else t for t in tokens]


def ref_text(formatter: ChatFormat, messages: list[Any], fmt: str) -> str:
    return formatter.tokenizer.decode(ref_tokens(formatter, messages, fmt))


# --- building blocks of the cases -----------------------------------------------------------------

IMAGE = {"image": {"uri": "https://example.com/cat.png"}}

WEATHER = {
    "tool_name": "get_weather",
    "description": "Get the current weather",
    "parameters": {
        "city": {"param_type": "string", "description": "The city, e.g. \"San Francisco\"", "required": True},
        "unit": {"param_type": "string", "description": "celsius or fahrenheit", "required": False, "default": "celsius"},
    },
}
SONGS = {
    "tool_name": "trending_songs",
    "description": "Returns the trending songs on a Music site",
    "parameters": {
        "n": {"param_type": "int", "description": "The number of songs to return", "required": True, "default": 10},
        "genre": {"param_type": "str", "description": "The genre <of> the songs & 'style'", "required": False},
    },
}
ODD = {
    "tool_name": "odd_one",
    "parameters": {
        "zeta": {"param_type": "float", "required": None, "default": 0},
        "alpha": {"param_type": "list", "description": "ünïcödé 😀", "default": [1, "two", 3.5]},
        "mid": {"param_type": "dict", "description": None, "required": False, "default": {"k": 1e20, "b": True}},
        "empty": {"param_type": "str", "default": ""},
    },
}
NO_PARAMS = {"tool_name": "get_time", "description": "Current time", "parameters": {}}

BUILTINS = ["brave_search", "wolfram_alpha", "photogen", "code_interpreter"]


def builtin(*names: str) -> list[dict[str, Any]]:
    return [{"tool_name": n} for n in names]


TOOLSETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    **{f"only_{n}": builtin(n) for n in BUILTINS},
    "all_builtin": builtin(*BUILTINS),
    "search_and_math": builtin("brave_search", "wolfram_alpha"),
    "custom_weather": [WEATHER],
    "custom_many": [WEATHER, SONGS, ODD, NO_PARAMS],
    "mixed": [*builtin("brave_search", "code_interpreter"), WEATHER, SONGS],
    "mixed_all": [*builtin(*BUILTINS), ODD],
}

USER = {"role": "user", "content": "What is the weather in Menlo Park?"}
SYSTEM = {"role": "system", "content": "You are a helpful assistant.\nAnswer briefly."}

DIALOGS: dict[str, list[dict[str, Any]]] = {
    "user_only": [USER],
    "system_user": [SYSTEM, USER],
    "system_list": [{"role": "system", "content": ["Rule one.", IMAGE, "Rule two."]}, USER],
    "system_image_only": [{"role": "system", "content": IMAGE}, USER],
    "context": [{"role": "user", "content": "Summarise the document.", "context": "The document says hello."}],
    "images": [{"role": "user", "content": ["Compare", IMAGE, "and", IMAGE, IMAGE, "please"]}],
    "multi_turn": [
        SYSTEM,
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?", "stop_reason": "end_of_turn"},
        {"role": "user", "content": "Tell me a joke about  spaces\n\n\tand tabs."},
    ],
    "unicode": [{"role": "user", "content": "héllo wörld 😀 日本語のテキスト — 12345678 I'll've"}],
    "special_text": [{"role": "user", "content": "Print <|eot_id|> and <|python_tag|> literally."}],
    "builtin_calls": [
        USER,
        {
            "role": "assistant",
            "content": "",
            "stop_reason": "end_of_message",
            "tool_calls": [{"call_id": "1", "tool_name": "brave_search", "arguments": {"query": "Menlo Park weather"}}],
        },
        {"role": "ipython", "call_id": "1", "tool_name": "brave_search", "content": '{"results": ["sunny"]}'},
        {
            "role": "assistant",
            "content": "",
            "stop_reason": "end_of_message",
            "tool_calls": [{"call_id": "2", "tool_name": "wolfram_alpha", "arguments": {"query": "22 C in F"}}],
        },
        {"role": "ipython", "call_id": "2", "tool_name": "wolfram_alpha", "content": "71.6 F"},
        {
            "role": "assistant",
            "content": "",
            "stop_reason": "end_of_message",
            "tool_calls": [{"call_id": "3", "tool_name": "photogen", "arguments": {"query": "a sunny park"}}],
        },
        {"role": "ipython", "call_id": "3", "tool_name": "photogen", "content": ["Here:", IMAGE]},
    ],
    "code_call": [
        {"role": "user", "content": "Compute 2**10"},
        {
            "role": "assistant",
            "content": "",
            "stop_reason": "end_of_message",
            "tool_calls": [{"call_id": "c", "tool_name": "code_interpreter", "arguments": {"code": "print(2**10)\n"}}],
        },
        {"role": "ipython", "call_id": "c", "tool_name": "code_interpreter", "content": "completed\n[stdout]1024[/stdout]"},
    ],
    "custom_call": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "stop_reason": "end_of_turn",
            "tool_calls": [
                {
                    "call_id": "w",
                    "tool_name": "get_weather",
                    "arguments": {"city": "Paris", "unit": "celsius", "days": 3, "ratio": 0.5, "exact": False,
                                  "note": None, "tags": ["a", 1, 2.5e-7], "opts": {"x": "é", "y": 1e16}},
                }
            ],
        },
        {"role": "ipython", "call_id": "w", "tool_name": "get_weather", "content": "18 C"},
        {"role": "assistant", "content": "It is 18 C in Paris.", "stop_reason": "end_of_turn"},
    ],
    "text_and_call": [
        {"role": "user", "content": "Search it."},
        {
            "role": "assistant",
            "content": "Let me look.",
            "stop_reason": "end_of_message",
            "tool_calls": [{"call_id": "1", "tool_name": "brave_search", "arguments": {"query": "llamas"}}],
        },
    ],
}


def request(dialog: str, tools: str = "none", fmt: str = "json", **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "model": "any",
        "messages": copy.deepcopy(DIALOGS[dialog]),
        "tools": copy.deepcopy(TOOLSETS[tools]),
        "tool_prompt_format": fmt,
    }
    req.update(extra)
    return req


def _chat_cases() -> list[Any]:
    cases = []
    # Every tool set with every format each model family takes.
    for model, formats in ((M31, ("json", "function_tag")), (MV, ("json", "function_tag")), (M32, ("python_list",))):
        for tools, fmt in itertools.product(TOOLSETS, formats):
            custom = any(t["tool_name"] not in BUILTINS for t in TOOLSETS[tools])
            if fmt != formats[0] and not custom:
                continue
            cases.append(pytest.param(model, request("system_user", tools, fmt), id=f"{model}-{tools}-{fmt}"))
    # Every dialog shape on each family, and on models whose messages pass unchanged.
    for model in (M31, M31_405, M32, M32_1B, GUARD, UNKNOWN):
        for dialog in DIALOGS:
            fmt = "python_list" if model in (M32, M32_1B) else "json"
            tools = "mixed" if dialog in ("builtin_calls", "custom_call") else "none"
            if model in (M32, M32_1B) and tools == "mixed":
                tools = "search_and_math"
            cases.append(pytest.param(model, request(dialog, tools, fmt), id=f"{model}-{dialog}"))
    return cases


CHAT_CASES = _chat_cases()


def test_there_are_many_chat_cases() -> None:
    assert len(CHAT_CASES) >= 60


@pytest.mark.parametrize(("model", "req"), CHAT_CASES)
def test_chat_prompt_matches_reference(formatter: ChatFormat, model: str, req: dict[str, Any]) -> None:
    ref_messages = ref_augment(req, model)
    # Text prompts are always encoded with the default (json) tool format.
    expected = ref_text(formatter, ref_messages, "json")
    got = _core.render_chat_prompt(json.dumps(req), model, TODAY_ARG)
    assert got == expected

    ours = json.loads(_core.augment_messages(json.dumps(req), model, TODAY_ARG))
    assert [(m["role"], m["content"]) for m in ours] == [
        (m.role, m.model_dump(mode="json")["content"]) for m in ref_messages
    ]
    fmt = req["tool_prompt_format"]
    assert _core.tokenize_messages(TOKENIZER_PATH, json.dumps(ours), fmt) == ref_tokens(formatter, ref_messages, fmt)


@pytest.mark.parametrize(
    ("model", "req", "needle"),
    [
        (M31, request("user_only", "custom_weather", "python_list"), "tool_prompt_format"),
        (MV, request("user_only", "mixed", "python_list"), "tool_prompt_format"),
        (M32, request("user_only", "custom_weather", "json"), "tool_prompt_format"),
        (M32, request("user_only", "mixed", "function_tag"), "tool_prompt_format"),
        (M31, request("user_only", tool_choice="required"), "tool_choice"),
        (M32, request("user_only", tool_choice="required"), "tool_choice"),
        (M31, {"model": "m", "messages": [SYSTEM, SYSTEM, USER]}, "system message"),
        (M32, {"model": "m", "messages": [SYSTEM, SYSTEM]}, "system message"),
    ],
)
def test_requests_the_reference_refuses(model: str, req: dict[str, Any], needle: str) -> None:
    with pytest.raises((AssertionError, ValueError)):
        ref_augment(req, model)
    with pytest.raises(ValueError, match=needle):
        _core.render_chat_prompt(json.dumps(req), model, TODAY_ARG)


def test_bad_request_json_names_the_field() -> None:
    with pytest.raises(ValueError, match="messages"):
        _core.render_chat_prompt(json.dumps({"model": "m", "messages": [{"role": "robot"}]}), M31, TODAY_ARG)
    with pytest.raises(ValueError, match="today"):
        _core.render_chat_prompt(json.dumps(request("user_only")), M31, "25/09/2024")


def test_render_chat_prompt_defaults_to_today() -> None:
    text = _core.render_chat_prompt(json.dumps(request("user_only")), M31)
    assert f"Today Date: {date.today().strftime('%d %B %Y')}<|eot_id|>" in text


# --- render_messages in each tool format ----------------------------------------------------------

MESSAGE_CASES = [
    pytest.param(dialog, fmt, id=f"{dialog}-{fmt}")
    for dialog in ("custom_call", "builtin_calls", "code_call", "text_and_call", "multi_turn", "images", "context")
    for fmt in ("json", "function_tag", "python_list")
]


@pytest.mark.parametrize(("dialog", "fmt"), MESSAGE_CASES)
def test_render_messages_matches_reference(formatter: ChatFormat, dialog: str, fmt: str) -> None:
    messages = DIALOGS[dialog]
    ref = [MESSAGE.validate_python(m) for m in messages]
    assert _core.render_messages(json.dumps(messages), fmt) == ref_text(formatter, ref, fmt)
    assert _core.tokenize_messages(TOKENIZER_PATH, json.dumps(messages), fmt) == ref_tokens(formatter, ref, fmt)


def test_render_messages_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="tool_prompt_format"):
        _core.render_messages("[]", "yaml")


# --- tokenizer ----------------------------------------------------------------------------------

TOKEN_TEXTS = [
    "",
    "Hello world",
    "  leading and trailing  ",
    "I'm sure they'll've DONE it, 'S OK",
    "numbers 1 12 123 1234 12345678 3.14159",
    "line\r\nbreaks\n\n\nand\ttabs \t \n",
    "héllo wörld — ünïcödé",
    "日本語のテキストと中文",
    "emoji 😀👍🏽 family 👨‍👩‍👧",
    "code: def f(x):\n    return x ** 2  # square\n",
    '{"type": "function", "name": "get", "parameters": {"a": 1}}',
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<|python_tag|>brave_search.call(query=\"x\")<|eom_id|><|reserved_special_token_200|>",
    "a" * 30_000 + " " * 26_000 + "b",
    "x " * 5000,
]


@pytest.mark.parametrize("allow_special", [True, False])
@pytest.mark.parametrize("text", TOKEN_TEXTS, ids=range(len(TOKEN_TEXTS)))
def test_tokenizer_matches_reference(tokenizer: Tokenizer, text: str, allow_special: bool) -> None:
    allowed: Any = "all" if allow_special else set()
    expected = tokenizer.encode(text, bos=False, eos=False, allowed_special=allowed)
    got = _core.tokenize(TOKENIZER_PATH, text, allow_special)
    assert got == expected
    assert _core.detokenize(TOKENIZER_PATH, got) == tokenizer.decode(expected)


def test_detokenize_replaces_broken_utf8(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("😀", bos=False, eos=False)
    assert len(ids) > 1
    assert _core.detokenize(TOKENIZER_PATH, ids[:1]) == tokenizer.decode(ids[:1])


def test_tokenizer_file_errors(tmp_path: Any) -> None:
    with pytest.raises(RuntimeError, match="/nonexistent/tokenizer.model"):
        _core.tokenize("/nonexistent/tokenizer.model", "hi")
    bad = tmp_path / "tokenizer.model"
    bad.write_text("aGk= 0\naGk= 1\n")
    with pytest.raises(ValueError, match="line 2"):
        _core.tokenize(str(bad), "hi")


# --- parsing replies -----------------------------------------------------------------------------

REPLIES = [
    "Hello! How can I help you today?",
    "  The answer is 42.  <|eot_id|>",
    "Partial answer cut by the length limit",
    "Two lines\nof text<|eom_id|>",
    "<|start_header_id|>assistant<|end_header_id|>\n\nHeader first.<|eot_id|>",
    '<|python_tag|>brave_search.call(query="weather in Menlo Park")<|eom_id|>',
    'brave_search.call(query="no python tag")',
    '<|python_tag|>wolfram_alpha.call(query="solve x^2 = 4")<|eom_id|>',
    '<|python_tag|>photogen.call(query="a llama on a beach")<|eom_id|>',
    'I will search: mysearch.call(query="custom name") now',
    "<|python_tag|>import math\nprint(math.sqrt(16))<|eom_id|>",
    "<|python_tag|>print('hi')",
    '{"type": "function", "name": "get_weather", "parameters": {"city": "Paris", "days": 3}}',
    '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
    '<|python_tag|>{"type": "function", "name": "trending_songs", "parameters": {"n": 10, "genre": "rock"}}<|eom_id|>',
    '{"type": "function", "name": "brave_search", "parameters": {"q": "news today"}}',
    '{"answer": 42}',
    "[1, 2, 3]",
    '<function=get_weather>{"city": "Paris"}</function>',
    "<function=get_weather>{'city': 'Paris', 'unit': 'celsius'}</function><|eot_id|>",
    'Sure. <function=trending_songs>{"n": 5}</function> done',
    "<function=wolfram_alpha>{\"query\": \"2+2\"}</function>",
    '<function=broken>{"city": Paris}</function>',
    "<function=nested>{\"a\": {\"b\": 1}}</function>",
    '[get_weather(city="San Francisco", unit="celsius")]',
    '[get_weather(city="Paris"), get_time()]<|eot_id|>',
    "[trending_songs(n=10, genre='pop', ratio=0.5, exact=True, extra=None, tags=['a', 'b'])]",
    "[f(a=-3, b=0x1F, c=1_000, d=1e-3, e=(1, 2), g={'k': 'v'}, h='''tri\nple''', i=r'\\d+')]",
    "[get_weather(city='Paris')] # trailing comment\n",
    "\n[get_time()]",
    "[brave_search(query='llamas')]",
    "[get_weather('Paris')]",
    "[get_weather(city='Paris'), 3]",
    "[]",
    "[a.b(x=1)]",
    "[f(a=1, b=2, a=3)]",
    "[f(a=1), g(b={1}, c=b'x', d=1j, e=...)]",
    "[f(a='line\\\ncontinued', b=\"\\x41\\u00e9\\101\", c=- 5, d=(1), e=())]",
    "[f(a=1)];\n# done\n",
    "[f(a=1)]\nprint(2)",
    "<|python_tag|>[get_weather(city=\"Oslo\")]<|eom_id|>",
    "<|python_tag|><|eot_id|>",
    "",
    "   ",
    "Here is code: x.call(query=\"y\") inside",
    'Malformed {"type": "function", "name": "x"',
    "<|eom_id|><|eot_id|>",
]

STOP_REASONS = ["end_of_turn", "end_of_message", "out_of_tokens"]


def strip_ids(message: dict[str, Any]) -> dict[str, Any]:
    message = copy.deepcopy(message)
    for call in message.get("tool_calls", []):
        call.pop("call_id", None)
    return message


@pytest.mark.parametrize("stop_reason", STOP_REASONS)
@pytest.mark.parametrize("text", REPLIES, ids=range(len(REPLIES)))
def test_decode_matches_reference(formatter: ChatFormat, text: str, stop_reason: str) -> None:
    expected = formatter.decode_assistant_message_from_content(text, StopReason(stop_reason))
    got = json.loads(_core.decode_assistant_message(text, stop_reason))
    assert strip_ids(got) == strip_ids(expected.model_dump(mode="json"))
    for call in got["tool_calls"]:
        assert len(call["call_id"]) == 36


# Outputs the reference parser raises on (a KeyError, IndexError or a validation error): the
# form claims to be a call but cannot make one. The core keeps the text and reports no call.
UNUSABLE_CALLS = [
    '{"type": "function", "parameters": {"a": 1}}',
    '{"name": "get_weather"}',
    '{"name": "get_weather", "parameters": "Paris"}',
    '{"name": 7, "parameters": {}}',
    "[get_weather(city=unknown_name)]",
    "[f(a=1 + 2j)]",
]


# Literals the reference coerces (sets to lists, bytes to text, infinities, named escapes,
# integers past 64 bits) have no faithful JSON form here: the core reports no call for them.
@pytest.mark.parametrize("text", ["[g(a={1})]", "[g(a=b'x')]", "[g(a=1e400)]", "[g(a='\\N{BULLET}')]", "[brave_search(q={1})]"])
def test_python_list_values_without_json_form(text: str) -> None:
    got = json.loads(_core.decode_assistant_message(text, "end_of_turn"))
    assert got["tool_calls"] == []
    assert got["content"] == text


PYTHON_VALUES = [
    "1", "-2", "1.5e3", '"s"', "'t'", "True", "None", "[1, 2]", "(3,)", '{"k": 1}', "0x10", ".5", "1.",
    '"a" "b"', "r'\\d'", '"\\t"', "x", "()", "(1)", "1_000", "-0", "+3", "0e0", "'''a\nb'''", "u'z'", "- 5",
    "(1, 'a', [None])", "{'a': {'b': [1.25]}}", "0.1e-10", "'\\q'", "'a'\n'b'", "f'x'", "1 + 2", "-True",
    "--1", "[1,]", "{'a': 1,}", "1e-7", "2.5E+3", "0_1", "1__0", "0x_f", "1j", "07", "'\\\n'",
]


def _random_python_lists(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        calls = []
        for _ in range(rng.randint(1, 3)):
            args = ", ".join(f"{rng.choice('abc')}={rng.choice(PYTHON_VALUES)}" for _ in range(rng.randint(0, 3)))
            calls.append(f"{rng.choice(['f', 'g', 'brave_search'])}({args})")
        lead = rng.choice(["", "\n", "#c\n", "<|python_tag|>"])
        tail = rng.choice(["", "\n", " # c", ";", " ;\n\n", "x", "<|eom_id|>"])
        out.append(lead + "[" + ", ".join(calls) + "]" + tail)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_python_lists_match_reference(formatter: ChatFormat, seed: int) -> None:
    compared = 0
    for text in _random_python_lists(seed, 250):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                expected = formatter.decode_assistant_message_from_content(text, StopReason.end_of_turn)
        except Exception:  # noqa: BLE001 - outputs the reference cannot turn into a message
            continue
        got = json.loads(_core.decode_assistant_message(text, "end_of_turn"))
        assert strip_ids(got) == strip_ids(expected.model_dump(mode="json")), text
        compared += 1
    assert compared > 150


@pytest.mark.parametrize("text", UNUSABLE_CALLS)
def test_calls_the_reference_cannot_build(formatter: ChatFormat, text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any of KeyError, ValueError, ValidationError
        formatter.decode_assistant_message_from_content(text, StopReason.end_of_turn)
    got = json.loads(_core.decode_assistant_message(text, "end_of_turn"))
    assert got["tool_calls"] == []
    assert got["content"] == text


def test_decode_null_parameters_like_reference(formatter: ChatFormat) -> None:
    text = '{"name": "get_weather", "parameters": null}'
    expected = formatter.decode_assistant_message_from_content(text, StopReason.end_of_turn)
    assert json.loads(_core.decode_assistant_message(text, "end_of_turn")) == expected.model_dump(mode="json")


def test_decode_rejects_unknown_stop_reason() -> None:
    with pytest.raises(ValueError, match="stop_reason"):
        _core.decode_assistant_message("hi", "finished")


# --- streaming -----------------------------------------------------------------------------------


def ref_stream(formatter: ChatFormat, chunks: list[str], finish: Optional[str]) -> list[dict[str, Any]]:
    """The stream algorithm of the stack's text-completion providers, as plain dicts."""

    def ev(kind: str, delta: Any, stop: Optional[str] = None) -> dict[str, Any]:
        return {"event_type": kind, "delta": delta, "logprobs": None, "stop_reason": stop}

    def tool_delta(content: Any, status: str) -> dict[str, Any]:
        return {"content": content, "parse_status": status}

    events = [ev("start", "")]
    buffer, ipython, stop = "", False, None
    for text in chunks:
        if not ipython and text.startswith("<|python_tag|>"):
            ipython = True
            events.append(ev("progress", tool_delta("", "started")))
            buffer += text
            continue
        if text == "<|eot_id|>":
            stop = "end_of_turn"
            continue
        if text == "<|eom_id|>":
            stop = "end_of_message"
            continue
        buffer += text
        events.append(ev("progress", tool_delta(text, "in_progress") if ipython else text, stop))
    if stop is None:
        stop = finish
    # The reference cannot build a message without a stop reason; parsing does not depend on it.
    message = formatter.decode_assistant_message_from_content(buffer, StopReason(stop or "out_of_tokens"))
    if ipython and not message.tool_calls:
        events.append(ev("progress", tool_delta("", "failure"), stop))
    for call in message.tool_calls:
        dumped = call.model_dump(mode="json")
        dumped.pop("call_id")
        events.append(ev("progress", tool_delta(dumped, "success"), stop))
    events.append(ev("complete", "", stop))
    return events


def chunkings(text: str) -> list[list[str]]:
    """Special tokens as chunks of their own (as backends stream them), the rest cut in pieces."""
    specials = ("<|python_tag|>", "<|eot_id|>", "<|eom_id|>")
    parts: list[str] = []
    rest = text
    while rest:
        hits = [(rest.find(s), s) for s in specials if s in rest]
        if not hits:
            parts.append(rest)
            break
        i, s = min(hits)
        if i:
            parts.append(rest[:i])
        parts.append(s)
        rest = rest[i + len(s) :]
    out = []
    for size in (1, 4, 1000):
        chunks: list[str] = []
        for p in parts:
            if p in specials:
                chunks.append(p)
            else:
                chunks.extend(p[i : i + size] for i in range(0, len(p), size))
        out.append(chunks)
    # A backend may also glue the tag to the first text.
    if text.startswith("<|python_tag|>"):
        out.append([text[:20], text[20:]])
    return out


STREAM_CASES = [
    pytest.param(chunks, finish, id=f"{i}-{j}-{finish}")
    for i, text in enumerate(REPLIES + ["Sure, let me check. <|python_tag|>oops no call"])
    for j, chunks in enumerate(chunkings(text))
    for finish in (None, "end_of_turn", "out_of_tokens")
    if j == 0 or finish == "end_of_turn"
]


@pytest.mark.parametrize(("chunks", "finish"), STREAM_CASES)
def test_stream_events_match_reference(formatter: ChatFormat, chunks: list[str], finish: Optional[str]) -> None:
    got = json.loads(_core.stream_events(chunks, finish))
    for e in got:
        delta = e["delta"]
        if isinstance(delta, dict) and isinstance(delta["content"], dict):
            assert len(delta["content"].pop("call_id")) == 36
    assert got == ref_stream(formatter, chunks, finish)


def test_stream_reports_failure_for_a_tag_without_call(formatter: ChatFormat) -> None:
    chunks = ["Sure, let me check. ", "<|python_tag|>", "oops no call"]
    events = json.loads(_core.stream_events(chunks, "end_of_turn"))
    assert [e["delta"]["parse_status"] for e in events if isinstance(e["delta"], dict)] == [
        "started",
        "in_progress",
        "failure",
    ]
    assert events == ref_stream(formatter, chunks, "end_of_turn")


# --- the CLI -------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llama_stack.cli.llama", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("model", "call_text"),
    [
        (M32, '<|python_tag|>[get_weather(city="Paris")]<|eot_id|>'),
        (M31, '<|python_tag|>{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>'),
        (MV, "<|image|>Describe this image in one sentence.<|eot_id|>"),
    ],
)
def test_cli_prompt_format(formatter: ChatFormat, model: str, call_text: str) -> None:
    proc = run_cli("model", "prompt-format", "-m", model)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    plain = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who wrote the play Hamlet?"},
        ],
    }
    # The plain example is exactly what the reference renders for that request on that date.
    assert ref_text(formatter, ref_augment(plain, model), "json") in out
    assert '<|python_tag|>brave_search.call(query="Menlo Park weather")<|eom_id|>' in out
    assert call_text in out


def test_cli_prompt_format_other_and_unknown_models() -> None:
    proc = run_cli("model", "prompt-format", "-m", "Llama-3-8B-Instruct")
    assert proc.returncode == 0, proc.stderr
    assert "no system or tool prompt" in proc.stdout
    assert "Environment: ipython" not in proc.stdout
    proc = run_cli("model", "prompt-format", "-m", "Llama9-1T")
    assert proc.returncode == 1
    assert "Llama9-1T" in proc.stderr

"""The messages and prompt a Llama model sees for a chat completion request: the request's
messages plus the system and tool prompts of the model's family (Llama 3.1 / 3.2), as the
stack's providers build them. The work is done by the core, the same code the providers run.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from llama_models.llama3.api.datatypes import Message
from llama_models.sku_list import resolve_model
from pydantic import TypeAdapter

from llama_stack.apis.inference import ChatCompletionRequest
from llama_stack.providers.utils.inference import supported_inference_models

__all__ = [
    "chat_completion_request_to_messages",
    "chat_completion_request_to_model_input_info",
    "chat_completion_request_to_prompt",
]

_MESSAGES = TypeAdapter(List[Message])


def _descriptor(request: ChatCompletionRequest) -> Optional[str]:
    """The descriptor of a Llama model the request names that has a known prompt format."""
    model = resolve_model(request.model)
    if model is None:
        return None
    descriptor = model.descriptor()
    return descriptor if descriptor in supported_inference_models() else None


def chat_completion_request_to_messages(request: ChatCompletionRequest) -> List[Message]:
    """The request's messages with the model family's system and tool prompts added; a model
    that is not a known Llama chat model gets its messages unchanged."""
    descriptor = _descriptor(request)
    if descriptor is None:
        return list(request.messages)
    from llama_stack import _core

    augmented = _core.augment_messages(request.model_dump_json(), descriptor)
    return _MESSAGES.validate_json(augmented)


def chat_completion_request_to_prompt(request: ChatCompletionRequest, formatter: Any = None) -> str:
    """The prompt text (Llama 3 chat format) for the request, ending with the assistant header."""
    from llama_stack import _core

    descriptor = _descriptor(request) or request.model
    return _core.render_chat_prompt(request.model_dump_json(), descriptor)


def chat_completion_request_to_model_input_info(request: ChatCompletionRequest, formatter: Any) -> Tuple[str, int]:
    """The prompt text and its length in tokens of ``formatter``'s tokenizer (a ``ChatFormat``)."""
    prompt = chat_completion_request_to_prompt(request, formatter)
    tokens = formatter.tokenizer.encode(prompt, bos=False, eos=False, allowed_special="all")
    return prompt, len(tokens)



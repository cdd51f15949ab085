"""Older name of :mod:`llama_stack.providers.utils.inference.prompt_adapter`."""

from llama_stack.providers.utils.inference.prompt_adapter import *  # noqa: F401 F403
from llama_stack.providers.utils.inference.prompt_adapter import (  # noqa: F401
    chat_completion_request_to_messages,
    chat_completion_request_to_model_input_info,
    chat_completion_request_to_prompt,
)

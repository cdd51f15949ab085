"""Datatypes and protocol classes of the Llama Stack APIs, one subpackage per API.

Nothing is imported here, so ``import llama_stack.apis`` stays cheap; import the subpackage you
need, e.g. ``from llama_stack.apis.inference import ChatCompletionRequest``.
"""

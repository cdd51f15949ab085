"""Providers that reach a service outside the stack (hosted APIs, databases, collectors)."""

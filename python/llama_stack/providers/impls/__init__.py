"""Providers that run inside the stack's own process."""

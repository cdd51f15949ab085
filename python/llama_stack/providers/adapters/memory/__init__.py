"""Configs of remote memory providers."""

"""Configs of remote agents providers."""

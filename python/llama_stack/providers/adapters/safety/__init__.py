"""Configs of remote safety providers."""

"""Configs of the remote inference providers, one package per ``remote::<name>`` type."""

"""Configs of the reference providers, one package per API."""

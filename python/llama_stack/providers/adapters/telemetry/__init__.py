"""Configs of remote telemetry providers."""

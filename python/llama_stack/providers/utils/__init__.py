"""Helpers shared by provider configs: key-value store settings and the model catalogue."""

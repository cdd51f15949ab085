"""Helpers of 0.0.41's provider test suites, so those suites run against this stack unchanged."""

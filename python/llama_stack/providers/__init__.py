"""Provider-facing types: the ``Api`` enum and the descriptors of provider implementations."""

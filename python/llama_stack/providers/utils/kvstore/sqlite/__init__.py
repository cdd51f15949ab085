"""SQLite-specific settings."""

"""Types shared by several APIs (tool execution over REST, training checkpoints)."""

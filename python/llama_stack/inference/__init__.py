"""Module names of releases before 0.0.41 (``llama_stack.inference.api``,
``llama_stack.inference.prompt_adapter``), kept so code importing them runs unchanged."""

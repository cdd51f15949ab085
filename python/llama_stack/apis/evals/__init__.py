from .evals import *  # noqa: F401,F403

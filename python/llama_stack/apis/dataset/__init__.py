from .dataset import *  # noqa: F401,F403

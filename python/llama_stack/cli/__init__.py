"""The ``llama`` command line.

Only argparse and the standard library load when the parser is built, so ``llama --help`` stays
fast; each command imports what it needs (YAML, ``llama_models``, the compiled core) when it runs.
"""

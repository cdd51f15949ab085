"""``python -m llama_stack`` behaves like the ``llama`` command."""

import sys

from llama_stack.cli.llama import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Side-by-side benchmark: fake backend alone vs upstream llama-stack 0.0.41 vs this project's server.
# All options go to compare.py (see bench/README.md or `bench/run.sh --help`).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/compare.py" "$@"

#!/usr/bin/env bash
# Side-by-side benchmark: fake backend alone vs upstream llama-stack 0.0.41 vs this project's server.
# All options go to compare.py (see bench/README.md or `bench/run.sh --help`); a run whose
# --workloads start with an agent workload (agents, agents_tool, agents_soak) goes to agents.py.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prev=""
for arg in "$@"; do
    case "$prev $arg" in
        "--workloads agents"* | *" --workloads=agents"*) exec python3 "$here/agents.py" "$@" ;;
    esac
    prev=$arg
done
exec python3 "$here/compare.py" "$@"

#!/usr/bin/env bash
# Start upstream llama-stack 0.0.41 on 127.0.0.1:PORT with inference -> fake Ollama on FAKE_PORT.
# Usage: start-upstream.sh PORT FAKE_PORT [RUN_YAML]   (RUN_YAML defaults to run-upstream.yaml; use
#        run-upstream-full.yaml for safety/memory/agents too)
# Env: BASELINE_VENV (default $HOME/.cache/lsrs-baseline/venv); HF_HOME with sentence-transformers/all-MiniLM-L6-v2
#      laid out as a Hugging Face cache (needed by the full config's memory provider, see README.md).
set -eu
port=${1:-15000}; fake_port=${2:-18001}
here=$(cd "$(dirname "$0")" && pwd)
cfg=${3:-$here/run-upstream.yaml}
venv=${BASELINE_VENV:-$HOME/.cache/lsrs-baseline/venv}
state=$(mktemp -d /tmp/ls-upstream.XXXXXX)
sed -e "s/__FAKE_PORT__/$fake_port/" -e "s#__STATE_DIR__#$state#" "$cfg" > "$state/run.yaml"
export HF_HOME=${HF_HOME:-$HOME/.cache/lsrs-baseline/hf} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# --disable_ipv6: upstream otherwise binds '::' with an IPv6-only socket, and 127.0.0.1 is refused.
exec "$venv/bin/python" -m llama_stack.distribution.server.server --yaml_config "$state/run.yaml" --port "$port" --disable_ipv6

#!/usr/bin/env bash
# The extended upstream baseline (load.py): fake backend + upstream 0.0.41 with run-upstream-full.yaml (started by
# load.py) + every workload, agents and memory included. For the side-by-side comparison use run.sh instead.
# Extra args go to load.py, e.g. add `--target rs=http://127.0.0.1:15001 --start "rs=..."` to compare side by side.
# Env: BASELINE_VENV (upstream venv), TOOL_PY (python for fake backend; uvloop used if present), FAKE_PORT, PORT, OUT.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${BASELINE_VENV:-$HOME/.cache/lsrs-baseline/venv}
tool_py=${TOOL_PY:-$HOME/.cache/lsrs-baseline/toolvenv/bin/python}
fake_port=${FAKE_PORT:-18001}; port=${PORT:-15000}; out=${OUT:-$here/results/baseline}
mkdir -p "$out"
"$tool_py" "$here/../tests/support/fake_backend.py" --port "$fake_port" > "$out/fake.log" 2>&1 &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null || true' EXIT
sleep 0.5
emb=$(ls -d "${HF_HOME:-$HOME/.cache/lsrs-baseline/hf}"/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/* | head -1)
python3 "$here/load.py" --fake "http://127.0.0.1:$fake_port" \
  --target "upstream=http://127.0.0.1:$port" \
  --start "upstream=bash $here/start-upstream.sh $port $fake_port $here/run-upstream-full.yaml" \
  --python "upstream=$venv/bin/python" \
  --embedding-model "$emb" --server-log "$out/server.log" \
  --out "$out/results.json" --out-md "$out/results.md" "$@"

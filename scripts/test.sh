#!/usr/bin/env bash
# Runs every test: lints, the Rust core's unit and integration tests, then the Python package
# (built into a virtual environment) with pytest and a stub check, and last `pip install .` as on a
# new machine, with cmake and libclang hidden (scripts/check-new-machine.sh).
#
#   scripts/test.sh            # everything
#   LSRS_VENV=/path scripts/test.sh   # use (or create) that virtual environment
#
# Needs cargo and python3 >= 3.10. Installs redis-server and PostgreSQL (Debian packages) when
# missing, because the kv store tests start real servers.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LSRS_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

step "test services"
bash scripts/install-test-services.sh

step "python environment ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "maturin>=1.7,<2" \
    "llama-models==0.0.41" "pydantic>=2,<3" "PyYAML>=6" \
    "pytest>=8" "pytest-asyncio>=0.23" "jsonschema>=4" "openapi-spec-validator>=0.7" \
    "httpx>=0.27,<0.28" "llama-stack-client==0.0.41" "openai>=1.40" termcolor prompt_toolkit mypy \
    numpy safetensors tokenizers
# PostgreSQL server binaries with the pgvector extension (Debian has no pgvector package).
"$VENV/bin/python" -m pip install -q "pgserver==0.1.4"
# The Chroma server the `remote::chromadb` tests start: it is a Rust binary inside the wheel and
# needs none of the Python client's dependencies, so they are left out (about 90 MB and seconds,
# instead of about 500 MB and a minute).
"$VENV/bin/python" -m pip install -q --no-deps "chromadb==1.5.9"
PGVECTOR_BIN="$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("pgserver").origin), "pginstall", "bin"))')"
# llama.cpp's own OpenAI-compatible server, the real server `remote::openai` is tested against.
# Its pip build compiles llama.cpp (minutes, once: pip keeps the wheel in its cache).
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$VENV/bin/python" -m pip install -q "llama-cpp-python[server]>=0.3,<0.4"

step "lints"
cargo fmt --check
cargo clippy --all-targets --features embedded --locked -q -- -D warnings
cargo clippy --lib --features python,embedded --locked -q -- -D warnings

step "rust tests"
# The memory tests chunk with the Llama 3 tokenizer that llama_models ships; the pgvector and
# Chroma ones start those servers from the wheels installed above.
LSRS_PGVECTOR_BIN="$PGVECTOR_BIN" \
LSRS_CHROMA_PYTHON="$(cd "$VENV" && pwd)/bin/python" \
LLAMA_STACK_PYTHON="$(cd "$VENV" && pwd)/bin/python" \
cargo test --locked --all-targets --features embedded

step "python extension"
VIRTUAL_ENV="$(cd "$VENV" && pwd)" "$VENV/bin/maturin" develop --profile dev --locked -q

step "python tests"
set +e
LSRS_REQUIRE_LLAMA_CPP=1 LSRS_PGVECTOR_BIN="$PGVECTOR_BIN" "$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"

step "stubs"
"$VENV/bin/python" -m mypy.stubtest llama_stack._core
"$VENV/bin/python" scripts/gen_openapi.py --check

step "pip install . on a new machine (no cmake, no libclang; minutes)"
bash scripts/check-new-machine.sh

step "all tests passed"

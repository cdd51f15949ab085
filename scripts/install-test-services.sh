#!/usr/bin/env bash
# Installs the servers the kv store backend tests start for themselves (redis-server and
# PostgreSQL), only when they are missing. Safe to run again; quiet unless it installs something.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
# Debian keeps initdb and postgres out of PATH, under /usr/lib/postgresql/<version>/bin.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
# cmake builds llama.cpp for the embedded inference provider; bindgen needs libclang for its bindings.
# Only cargo's own builds here use these two: `pip install .` brings both from PyPI (pyproject.toml).
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || missing+=(libclang-dev)
# bubblewrap sandboxes the agents' code interpreter (prlimit and setpriv come with util-linux);
# the system python's matplotlib lets the tests check that a plot comes back as an image.
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || missing+=(python3-matplotlib)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Whatever service a package starts is left alone: the tests start private servers on free ports.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

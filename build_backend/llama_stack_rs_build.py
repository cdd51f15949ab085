"""The PEP 517 build backend of llama-stack-rs: maturin, with the tools llama.cpp's build needs
taken from the build environment's own packages instead of the machine.

The embedded inference provider compiles llama.cpp with cmake and generates its C bindings with
bindgen, which loads libclang. A machine with a C/C++ compiler and cargo need not have either:
`[build-system] requires` (pyproject.toml) brings PyPI's `cmake` and `libclang` wheels into the
build environment, and before any hook that compiles hands over to maturin, this module sets

  CMAKE                     the `cmake` wheel's binary (the `cmake` crate runs it), its folder
                            first on PATH;
  LIBCLANG_PATH             the `libclang` wheel's folder holding libclang.so (bindgen loads it);
  BINDGEN_EXTRA_CLANG_ARGS  -I<the C compiler's builtin include folder>: that wheel ships no
                            compiler headers (stddef.h, stdint.h, ...), the system compiler's serve;
  RUSTFLAGS                 -C target-cpu=native: a source install is built for the CPU it runs
                            on, which makes llama.cpp's build use the CPU's vector extensions
                            (GGML_NATIVE), like llama.cpp's own builds;
  CMAKE_PROJECT_INCLUDE_BEFORE  llama_cpp_options.cmake beside this file, which leaves out
                            llama.cpp's `common` library: compiled by default, never linked here.

The wheels are used even where the machine has its own cmake and libclang, so every source
install builds with the same tools. A variable already set in the environment wins (for example
`LIBCLANG_PATH=/usr/lib/llvm-14/lib`, or `CMAKE=/usr/bin/cmake`), and
`LLAMA_STACK_PORTABLE_BUILD=1` leaves out `target-cpu=native`, for a wheel meant to be copied to
other machines (then llama.cpp gets only the baseline x86-64 instruction set). Setting RUSTFLAGS
replaces cargo's `build.rustflags` configuration, as cargo does for any RUSTFLAGS.

`python build_backend/llama_stack_rs_build.py --print-env` prints these settings as shell
`export` lines (for builds that bypass pip, such as `maturin develop`), resolved against the
Python running it, which then needs the `cmake` and `libclang` packages installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

if __name__ != "__main__":  # as a build backend (`--print-env` needs no maturin)
    import maturin
    from maturin import (  # noqa: F401  (the hooks that compile nothing are maturin's own)
        build_sdist,
        get_requires_for_build_sdist,
        get_requires_for_build_wheel,
        prepare_metadata_for_build_wheel,
    )

    try:  # optional in maturin's interface
        from maturin import get_requires_for_build_editable, prepare_metadata_for_build_editable  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def _cmake_bin() -> Optional[Path]:
    try:
        import cmake  # the PyPI wheel
    except ImportError:
        return None
    exe = Path(cmake.CMAKE_BIN_DIR) / "cmake"
    return exe if exe.is_file() else None


def _libclang_dir() -> Optional[Path]:
    try:
        import clang  # the PyPI `libclang` wheel
    except ImportError:
        return None
    native = Path(clang.__file__).resolve().parent / "native"
    return native if any(native.glob("libclang*.so*")) or any(native.glob("libclang*.dylib")) else None


def _compiler_include_dir() -> Optional[str]:
    """The C compiler's own header folder (stddef.h and friends), as `gcc -print-file-name`."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    try:
        out = subprocess.run(
            [*shlex.split(cc), "-print-file-name=include"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out and os.path.isabs(out) and os.path.isdir(out) else None


def build_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """The variables to add to `environ` for a build of the native extension."""
    env: Dict[str, str] = {}
    cmake = _cmake_bin()
    if cmake is not None and "CMAKE" not in environ:
        env["CMAKE"] = str(cmake)
        env["PATH"] = os.pathsep.join([str(cmake.parent), environ.get("PATH", "")])
    libclang = _libclang_dir()
    if libclang is not None and "LIBCLANG_PATH" not in environ:
        env["LIBCLANG_PATH"] = str(libclang)
        include = _compiler_include_dir()
        if include is not None:
            extra = environ.get("BINDGEN_EXTRA_CLANG_ARGS", "")
            env["BINDGEN_EXTRA_CLANG_ARGS"] = f"{extra} -I{include}".strip()
    portable = environ.get("LLAMA_STACK_PORTABLE_BUILD", "") not in ("", "0")
    rustflags = environ.get("RUSTFLAGS", "")
    if not portable and "CARGO_ENCODED_RUSTFLAGS" not in environ and "target-cpu" not in rustflags:
        env["RUSTFLAGS"] = f"{rustflags} -C target-cpu=native".strip()
    if "CMAKE_PROJECT_INCLUDE_BEFORE" not in environ:
        # llama-cpp-sys-2 hands every CMAKE_* variable to llama.cpp's configure step.
        env["CMAKE_PROJECT_INCLUDE_BEFORE"] = str(Path(__file__).resolve().with_name("llama_cpp_options.cmake"))
    return env


def _prepare() -> None:
    env = build_env(os.environ)
    for key, value in env.items():
        print(f"llama-stack-rs build: {key}={value}", file=sys.stderr)
    os.environ.update(env)


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _prepare()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _prepare()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


if __name__ == "__main__":
    if sys.argv[1:] != ["--print-env"]:
        sys.exit(f"usage: {sys.argv[0]} --print-env")
    for key, value in build_env(os.environ).items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")

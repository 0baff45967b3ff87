#!/usr/bin/env bash
# The whole test suite: the Rust tests, then the Python tests (the package with TRL, Ray and verl;
# `rlvr serve` with OpenEnv's and SandboxFusion's clients).
#
# The Python side runs in its own virtualenv (default ~/.cache/rlvr/test-venv, or
# RLVR_TEST_VENV), into which this installs the pinned test dependencies and the package
# itself, built with the test profile so that it reuses the Rust build the tests just made.
# The first run downloads about 4 GB of wheels (torch and its CUDA runtime packages); later
# runs find them installed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace

cache="${XDG_CACHE_HOME:-$HOME/.cache}"
venv="${RLVR_TEST_VENV:-$cache/rlvr/test-venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating the test virtualenv at $venv"
    # Some distributions ship Python without `venv`; virtualenv does the same from pip.
    python3 -m venv "$venv" 2>/dev/null || {
        python3 -m pip install --quiet --user virtualenv && python3 -m virtualenv --quiet "$venv"
    }
fi
py="$venv/bin/python"
pins=python/requirements-test.txt
if ! cmp -s "$pins" "$venv/.installed-requirements"; then
    echo "installing the Python test dependencies ($pins; about 4 GB the first time)"
    "$py" -m pip install --quiet --disable-pip-version-check -r "$pins"
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps verl==0.9.1
    cp "$pins" "$venv/.installed-requirements"
fi
echo "building and installing the rlvr Python package"
# The pinned maturin of the virtualenv builds it (no isolated build environment to fetch).
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" "$py" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    --no-build-isolation ./python
# The server tests (test_serve.py) start the binary the Rust tests just built.
export RLVR_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rlvr"
# From the repository root: in python/ the source folder `rlvr` would shadow the installed package.
"$py" -m pytest -q -p no:cacheprovider python/tests

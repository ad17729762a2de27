#!/usr/bin/env bash
# Every test of the project: the Rust workspace (library, command line) and the Python package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The nuclear-norm heuristic's semidefinite cones link the system BLAS and LAPACK.
libs="$(ldconfig -p 2>/dev/null || true)"
if ! grep -q "liblapack\.so " <<<"$libs" || ! grep -q "libblas\.so " <<<"$libs"; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblapack-dev libblas-dev
    else
        echo "test.sh: install a BLAS and LAPACK (Debian: liblapack-dev libblas-dev)" >&2
        exit 1
    fi
fi
cargo test --release --workspace
bash scripts/test-python.sh

#!/usr/bin/env bash
# Every test of the project: the Rust workspace (library, command line) and the Python package.
# The nuclear-norm heuristic is an optional feature (`nuclear`): its semidefinite cones link the
# system BLAS and LAPACK. When they are installed (or can be installed here with apt-get as root)
# the feature is turned on and its tests run; otherwise they are skipped and everything else runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_blas_lapack() {
    local libs
    libs="$(ldconfig -p 2>/dev/null || true)"
    grep -q "liblapack\.so " <<<"$libs" && grep -q "libblas\.so " <<<"$libs"
}

if ! have_blas_lapack && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing liblapack-dev libblas-dev for the nuclear-norm heuristic" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        liblapack-dev libblas-dev; } || echo "test.sh: could not install BLAS/LAPACK" >&2
fi

if have_blas_lapack; then
    export CONVEXNN_NUCLEAR=1
    cargo test --release --workspace --features convexnn/nuclear,convexnn-cli/nuclear
else
    export CONVEXNN_NUCLEAR=0
    echo "test.sh: no system BLAS/LAPACK (Debian: liblapack-dev libblas-dev): the nuclear-norm tests are skipped, building without the nuclear feature" >&2
    cargo test --release --workspace
fi
bash scripts/test-python.sh

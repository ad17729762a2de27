#!/usr/bin/env bash
# Builds the Python package (crates/convexnn-py) into a virtual environment under target/ and runs
# its pytest suite. Needs CPython 3.9+ with venv and pip, the Rust toolchain, and the package
# registries. The wheel is built with the workspace's target/ folder, so crates already compiled
# by `cargo build --release` are reused. CONVEXNN_NUCLEAR=1 (set by scripts/test.sh when a system
# BLAS and LAPACK are installed) builds the command-line tool and the wheel with the `nuclear`
# feature (the nuclear-norm heuristic); otherwise its tests are skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="$root/target/pyenv"
wheels="$root/target/pywheels"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
if ! "$vpy" -c "import maturin, pytest, numpy, sklearn" >/dev/null 2>&1; then
    "$vpy" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$vpy" -m pip install --quiet --disable-pip-version-check maturin pytest numpy scikit-learn
fi

features=()
if [ "${CONVEXNN_NUCLEAR:-0}" = 1 ]; then
    features=(--features nuclear)
fi

# The command-line tool, for the tests that compare it with the Python package.
cargo build --release --quiet -p convexnn-cli "${features[@]}"

rm -rf "$wheels"
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    maturin build --release --quiet --compatibility linux "${features[@]}" \
    -m crates/convexnn-py/Cargo.toml --interpreter "$vpy" --out "$wheels"
"$vpy" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    "$wheels"/convexnn-*.whl

status=0
"$vpy" -m pytest -q -p no:cacheprovider crates/convexnn-py/tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-python: no tests were collected" >&2
    exit 1
fi
exit "$status"

#!/usr/bin/env bash
# Every test of the project: the Rust workspace (library, command line) and the Python package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --release --workspace
bash scripts/test-python.sh

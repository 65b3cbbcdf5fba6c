#!/usr/bin/env bash
# The test command: installs what it needs, builds every binary the multi-process tests start, runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cargo build --workspace --bins
cargo test --workspace "$@"

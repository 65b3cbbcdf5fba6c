#!/usr/bin/env bash
# The test command: installs what it needs, builds every binary the multi-process tests start, runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cargo build --workspace --bins
cargo test --workspace "$@"
# vos's scm class `dcpm` (the `pmem` feature, Debian libpmem) is compiled only with the feature:
# its tests (a libpmem WAL on tmpfs with PMEM_IS_PMEM_FORCE=1) run here.
cargo test -p vos --features pmem --test dcpm "$@"
cargo test -p tools --features pmem --bin vos_perf "$@"

#!/usr/bin/env bash
# The main job: installs what it needs, builds in release mode, brings up a local cluster and runs a
# workload against it.
#
# Today the cluster is two storage-less `cart_server` ranks (group daos_server, attach-info file in a
# temp dir) and the workload is DAOS's `self_test` against both ranks, printing DAOS's report: the
# fabric check DAOS admins run before they trust a cluster. Engines, pools and the SDK workload join
# this script as their issues land.
#
# Environment: D_PROVIDER (default ofi+tcp;ofi_rxm; ofi+shm for shared memory), SELF_TEST_REPS
# (repetitions per size, default 20000), SELF_TEST_SIZES (default DAOS's "0 0,0 b1048578,b1048578 0"
# plus an 8 KiB IOV pair).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cargo build --release -p tools --bin cart_server --bin self_test

BIN=${CARGO_TARGET_DIR:-target}/release
export D_PROVIDER=${D_PROVIDER:-ofi+tcp;ofi_rxm}
GROUP=daos_server
REPS=${SELF_TEST_REPS:-20000}
SIZES=${SELF_TEST_SIZES:-"0 0,i8192 i8192,0 b1048578,b1048578 0"}
DIR=$(mktemp -d /tmp/daos-rs-cluster.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

for rank in 0 1; do
  "$BIN/cart_server" --group-name "$GROUP" --rank "$rank" --path "$DIR" >"$DIR/rank$rank.log" 2>&1 &
  PIDS+=($!)
done
# Wait (bounded) until both ranks printed their ready line.
for rank in 0 1; do
  for i in $(seq 200); do
    grep -q "cart_server ready" "$DIR/rank$rank.log" 2>/dev/null && break
    kill -0 "${PIDS[$rank]}" 2>/dev/null || { cat "$DIR/rank$rank.log"; echo "rank $rank failed to start" >&2; exit 1; }
    [ "$i" -lt 200 ] || { cat "$DIR/rank$rank.log"; echo "rank $rank not ready after 20 s" >&2; exit 1; }
    sleep 0.1
  done
  grep "cart_server ready" "$DIR/rank$rank.log"
done
echo "attach info ($DIR/$GROUP.attach_info_tmp):"
sed 's/^/  /' "$DIR/$GROUP.attach_info_tmp"
echo

"$BIN/self_test" --group-name "$GROUP" --path "$DIR" --endpoint 0-1:0 \
  --message-sizes "$SIZES" --repetitions-per-size "$REPS" --max-inflight-rpcs 16

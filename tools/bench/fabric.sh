#!/usr/bin/env bash
# tools/bench/fabric.sh — cart (self_test) against the raw fabric (fi_pingpong), same machine, same run.
#
# Usage: tools/bench/fabric.sh [--provider P]... [--json] [--runs N] [--no-build] [--quick] [--fi-only] [-v]
#
#   --provider P  cart provider to measure (repeatable): 'ofi+tcp;ofi_rxm' (alias 'ofi+tcp', or the
#                 libfabric name 'tcp;ofi_rxm') and/or 'ofi+shm' (or 'shm'). Default: both.
#   --json        print only the JSON object on stdout (step log off unless -v).
#   --runs N      repeat every measurement N times (fi_pingpong and self_test interleaved, one
#                 server set per provider) and report the median of each figure (default 1).
#   --no-build    use the binaries already in $CARGO_TARGET_DIR/release (default: target/release).
#   --quick       ~10x fewer iterations (smoke test of the script itself; figures are noisier).
#   --fi-only     measure fi_pingpong alone (only the fi_pingpong_* keys; no build, no cart).
#   -v            step log on stderr even with --json.
#
# Output: ONE JSON object, one member per provider (cart name), each with
#   rtt_8b_us                   self_test, 8 B each way (IOV), 1 RPC in flight, endpoint 0:0:
#                               elapsed time of the loop / RPCs (= 1e6 / rpc_per_sec), µs
#   fi_pingpong_rtt_8b_us       fi_pingpong -e rdm -S 8: 2 × its "usec/xfer", µs
#   rtt_ratio                   rtt_8b_us / fi_pingpong_rtt_8b_us of the same run (target ≤ 1.2 tcp,
#                               ≤ 1.5 shm); with --runs N, the median of the N per-run ratios
#   rpc_per_sec_64b_inflight1   self_test, 64 B each way (IOV), 1 in flight, endpoints 0-1:0
#   rpc_per_sec_64b_inflight16  same with 16 in flight                  (target ≥ 2 × inflight1)
#   bulk_1m_mb_per_sec          self_test "b1048576 0" (1 MiB BULK_GET, empty reply), 16 in flight,
#                               endpoint 0:0: RPC/s × 1 MiB, in MiB/s (2^20 B/s, DAOS's MB)
#   fi_pingpong_1m_mb_per_sec   fi_pingpong -e rdm -S 1048576: its MB/sec (10^6 B/s) converted to MiB/s
#   bulk_ratio                  bulk_1m_mb_per_sec / fi_pingpong_1m_mb_per_sec of the same run
#                               (target ≥ 0.9); with --runs N, the median of the per-run ratios
#                               The server runs in the default block mode; self_test, which polls
#                               for its whole run, opens its CQ without a wait object by default
#                               (see rtt_8b_us_block_client for a client in block mode too)
#   rtt_8b_us_block_client      tcp only: rtt_8b_us with CART_PROGRESS_MODE=block for self_test too
#                               (both sides with a CQ wait fd, as two idle-friendly processes)
#   rtt_ratio_block_client      rtt_8b_us_block_client / fi_pingpong_rtt_8b_us of the same run
#   rtt_8b_us_busy_poll         tcp only: rtt_8b_us with CART_PROGRESS_MODE=busy on both sides (a
#                               server of its own, rank 2, up for this measurement only; CQ without
#                               a wait object, Mercury's NA_NO_BLOCK); the default mode's figures
#                               above stay the contract
#   rtt_ratio_busy_poll         rtt_8b_us_busy_poll / fi_pingpong_rtt_8b_us of the same run
#
# Apples to apples:
# - fi_pingpong prints ONE-WAY time: "usec/xfer" = loop time / (2 × iterations), because each
#   iteration is a ping and a pong. Its round trip is therefore 2 × usec/xfer. That figure is an
#   average over the whole timed loop (wall clock / round trips), so our rtt_8b_us is taken the same
#   way — self_test's wall-clock loop time per RPC at 1 in flight (1e6 / rpc_per_sec) — and not the
#   per-RPC median, which would leave out the client's own per-RPC overhead.
# - fi_pingpong's "MB/sec" counts the payload of both directions (2 × size × iterations) over the loop
#   time in 10^6 B/s; with one message in flight at a time that is the payload rate of the link.
#   self_test's bandwidth is RPC/s × (send + reply) payload = RPC/s × 1 MiB here, in 2^20 B/s. Both
#   are converted to MiB/s before the ratio, so the ratio is unit-free.
# - Pinning: fi_pingpong server on core 0, client on core 1; every cart_server process on core 0,
#   self_test on core 1. RTT and bulk (the two ratios) use one server (0:0) with no other server
#   running, like fi_pingpong's one pair: an idle server sharing the core costs the measured one
#   (tcp 1 MiB BULK_GET, MiB/s, three runs each: alone 7,912/7,771/8,175, beside an idle server
#   7,771/7,194/7,328, beside an idle busy-mode server 6,053/6,761/6,725). Rank 1 runs only for
#   the RPC-rate pair (0-1:0, as DAOS users run self_test), rank 2 only for the busy-mode RTT.
#
# Each fi_pingpong pair gets its own control port (-B on the server, -P on the client); the server is
# started first, the client only once the port is in LISTEN state, and the server is stopped by its
# own PID. cart_server processes are started by this script, waited for through the attach-info file,
# and stopped (SIGTERM, then SIGKILL after 10 s) by PID. The temp dir is removed by an EXIT trap.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROVIDERS=()
JSON=0
RUNS=1
BUILD=1
QUICK=0
FI_ONLY=0
VERBOSE=0

die() {
    echo "fabric.sh: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --provider)
        [[ $# -ge 2 ]] || die "--provider needs a value"
        PROVIDERS+=("$2")
        shift 2
        ;;
    --provider=*)
        PROVIDERS+=("${1#*=}")
        shift
        ;;
    --json)
        JSON=1
        shift
        ;;
    --runs)
        [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive integer"
        RUNS="$2"
        shift 2
        ;;
    --no-build)
        BUILD=0
        shift
        ;;
    --quick)
        QUICK=1
        shift
        ;;
    --fi-only)
        FI_ONLY=1
        shift
        ;;
    -v | --verbose)
        VERBOSE=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ ${#PROVIDERS[@]} -gt 0 ]] || PROVIDERS=("ofi+tcp;ofi_rxm" "ofi+shm")
[[ $JSON -eq 1 && $VERBOSE -eq 0 ]] && LOG=0 || LOG=1

log() {
    if [[ $LOG -eq 1 ]]; then echo "[fabric.sh] $*" >&2; fi
}

# cart provider name -> (canonical cart name, libfabric provider name for fi_pingpong)
canon_provider() {
    case "$1" in
    "ofi+tcp;ofi_rxm" | "ofi+tcp" | "tcp;ofi_rxm" | "tcp") echo "ofi+tcp;ofi_rxm" ;;
    "ofi+shm" | "shm") echo "ofi+shm" ;;
    *) die "unsupported provider '$1' (use 'ofi+tcp;ofi_rxm' or 'ofi+shm')" ;;
    esac
}
fi_name() {
    case "$1" in
    "ofi+tcp;ofi_rxm") echo "tcp;ofi_rxm" ;;
    "ofi+shm") echo "shm" ;;
    esac
}

for p in "${PROVIDERS[@]}"; do canon_provider "$p" >/dev/null; done # refuse bad names before building

for tool in fi_pingpong taskset python3 timeout; do
    command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install libfabric-bin util-linux python3 coreutils)"
done
NCPU="$(nproc)"
if [[ "$NCPU" -ge 2 ]]; then
    CORE_SRV=0
    CORE_CLI=1
else
    CORE_SRV=0
    CORE_CLI=0
    log "only one CPU: server and client share core 0"
fi

# Iteration counts: long enough for stable figures on a noisy 2-core VM, short enough for ~30 s per
# provider and run.
if [[ $QUICK -eq 1 ]]; then
    PP_ITERS_8=5000 PP_ITERS_1M=300 ST_REPS_RTT=5000 ST_REPS_RATE=5000 ST_REPS_BULK=300
else
    PP_ITERS_8=50000 PP_ITERS_1M=10000 ST_REPS_RTT=50000 ST_REPS_RATE=50000 ST_REPS_BULK=10000
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET_DIR/release"
[[ $FI_ONLY -eq 1 ]] && BUILD=0
if [[ $BUILD -eq 1 ]]; then
    log "building release binaries (cargo build --release -p tools --bins)"
    (cd "$REPO" && cargo build --release -p tools --bins --quiet) >&2 || die "cargo build failed"
fi
if [[ $FI_ONLY -eq 0 ]]; then
    for b in self_test cart_server; do
        [[ -x "$BIN/$b" ]] || die "$BIN/$b missing (build it or drop --no-build)"
    done
fi

TMP="$(mktemp -d -t fabric-bench.XXXXXX)"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# Stops one of our children by PID: SIGTERM, up to 10 s, then SIGKILL; always reaps it.
stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# True once a TCP socket is in LISTEN state on port $1 (from /proc/net/tcp{,6}; no probe connection,
# which fi_pingpong would take for its client).
is_listening() {
    local hex
    hex="$(printf '%04X' "$1")"
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# fi_pingpong PROVIDER SIZE ITERS -> sets PP_US (one-way usec/xfer) and PP_MB (MB/sec, 10^6 B/s).
# Runs in the main shell (no command substitution) so the EXIT trap knows the server's PID.
run_pingpong() {
    local prov="$1" size="$2" iters="$3" port out srv_pid i line
    port="$(free_port)"
    out="$TMP/pp-$port"
    taskset -c "$CORE_SRV" fi_pingpong -p "$prov" -e rdm -S "$size" -I "$iters" -B "$port" >"$out.srv" 2>&1 &
    srv_pid=$!
    PIDS+=("$srv_pid")
    for ((i = 0; i < 400; i++)); do
        is_listening "$port" && break
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.025
    done
    if ! is_listening "$port"; then
        cat "$out.srv" >&2
        stop_pid "$srv_pid"
        die "fi_pingpong server ($prov) did not listen on port $port"
    fi
    if ! timeout 120 taskset -c "$CORE_CLI" fi_pingpong -p "$prov" -e rdm -S "$size" -I "$iters" -P "$port" \
        127.0.0.1 >"$out.cli" 2>&1; then
        cat "$out.cli" "$out.srv" >&2
        stop_pid "$srv_pid"
        die "fi_pingpong client ($prov, $size B) failed"
    fi
    # The server exits by itself after the last iteration; stop it by PID if it lingers.
    stop_pid "$srv_pid"
    # Result line: bytes #sent #ack total time MB/sec usec/xfer Mxfers/sec
    line="$(awk '$1 ~ /^[0-9]/ && NF >= 8 { l = $0 } END { print l }' "$out.cli")"
    [[ -n "$line" ]] || {
        cat "$out.cli" >&2
        die "no result line from fi_pingpong ($prov, $size B)"
    }
    read -r _ _ _ _ _ PP_MB PP_US _ <<<"$line"
}

# start_server PROVIDER GROUP DIR RANK MODE: starts one cart server (core $CORE_SRV, progress mode
# MODE) and waits until its rank appears in the attach-info file; its PID goes to SERVER_PID[RANK].
declare -A SERVER_PID=()
start_server() {
    local prov="$1" group="$2" dir="$3" rank="$4" mode="$5" i pid
    env D_PROVIDER="$prov" CART_PROGRESS_MODE="$mode" ${TCP_IFACE:+D_INTERFACE="$TCP_IFACE"} \
        taskset -c "$CORE_SRV" "$BIN/cart_server" --group-name "$group" --rank "$rank" --path "$dir" \
        >>"$dir/server$rank.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    SERVER_PID[$rank]=$pid
    local f="$dir/$group.attach_info_tmp"
    for ((i = 0; i < 600; i++)); do
        if [[ -f "$f" ]] && awk -v r="$rank" '$1 == r { found = 1 } END { exit !found }' "$f"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$dir"/server*.log >&2
            die "cart_server ($prov, rank $rank) exited during start-up"
        fi
        sleep 0.05
    done
    cat "$dir"/server*.log >&2
    [[ -f "$f" ]] && cat "$f" >&2
    die "cart server ($prov, rank $rank) did not register in $f within 30 s"
}

# stop_server RANK: stops that server by PID (it removes its attach-info line on SIGTERM).
stop_server() {
    [[ -n "${SERVER_PID[$1]:-}" ]] || return 0
    stop_pid "${SERVER_PID[$1]}"
    unset "SERVER_PID[$1]"
}

stop_servers() {
    local r
    for r in "${!SERVER_PID[@]}"; do stop_server "$r"; done
}

# self_test PROVIDER GROUP DIR ENDPOINTS SIZES INFLIGHT REPS -> ST_JSON = path of its --json document
run_self_test() {
    local prov="$1" group="$2" dir="$3" eps="$4" sizes="$5" inflight="$6" reps="$7" out
    ST_SEQ=$((ST_SEQ + 1))
    out="$dir/st-$ST_SEQ"
    if ! env D_PROVIDER="$prov" ${ST_MODE:+CART_PROGRESS_MODE="$ST_MODE"} ${TCP_IFACE:+D_INTERFACE="$TCP_IFACE"} timeout 300 \
        taskset -c "$CORE_CLI" "$BIN/self_test" -g "$group" -p "$dir" -e "$eps" -s "$sizes" \
        -i "$inflight" -r "$reps" --json >"$out.json" 2>"$out.err"; then
        cat "$out.err" "$out.json" >&2
        cat "$dir"/server*.log >&2
        die "self_test ($prov: -e $eps -s '$sizes' -i $inflight -r $reps) failed"
    fi
    ST_JSON="$out.json"
}

# st_field FILE FIELD [SUBFIELD]: the first test's FIELD of a self_test JSON document; fails on RPC
# failures.
st_field() {
    python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["tests"][0]
if t["failures"]:
    sys.exit("self_test reported %d failed RPCs (%s)" % (t["failures"], sys.argv[1]))
v = t[sys.argv[2]]
for k in sys.argv[3:]:
    v = v[k]
print(repr(float(v)))
' "$@"
}

# Other processes on this machine distort every figure (2 cores); say so rather than hide it.
read -r LOAD1 _ </proc/loadavg
if python3 -c "import sys; sys.exit(0 if float('$LOAD1') > 1.0 else 1)"; then
    echo "[fabric.sh] warning: 1-min load average is $LOAD1 before the run; figures will be noisy" >&2
fi

RESULTS="$TMP/results.tsv" # provider \t key \t value, one line per run and figure
: >"$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
calc() { python3 -c "print(repr(float($1)))"; }
ST_SEQ=0

for p in "${PROVIDERS[@]}"; do
    prov="$(canon_provider "$p")"
    fprov="$(fi_name "$prov")"
    TCP_IFACE=""
    [[ "$prov" == "ofi+tcp;ofi_rxm" ]] && TCP_IFACE="lo"
    dir="$TMP/${fprov//[^a-z]/_}"
    mkdir -p "$dir"
    group="bench_${fprov//[^a-z]/_}"
    if [[ $FI_ONLY -eq 0 ]]; then
        log "$prov: cart servers on core $CORE_SRV; self_test and the fi_pingpong client on core $CORE_CLI"
        start_server "$prov" "$group" "$dir" 0 block
    fi
    for ((run = 1; run <= RUNS; run++)); do
        tag="$prov run $run/$RUNS"
        log "$tag: fi_pingpong -p '$fprov' -S 8 -I $PP_ITERS_8"
        run_pingpong "$fprov" 8 "$PP_ITERS_8"
        pp_rtt="$(calc "2 * $PP_US")" # one-way usec/xfer -> round trip
        record "$prov" fi_pingpong_rtt_8b_us "$pp_rtt"
        if [[ $FI_ONLY -eq 0 ]]; then
            log "$tag: self_test -s 8 -i 1 -e 0:0 -r $ST_REPS_RTT"
            run_self_test "$prov" "$group" "$dir" 0:0 8 1 "$ST_REPS_RTT"
            rtt="$(calc "1e6 / $(st_field "$ST_JSON" rpc_per_sec)")"
            record "$prov" rtt_8b_us "$rtt"
            record "$prov" rtt_ratio "$(calc "$rtt / $pp_rtt")"
            # Shown in the human summary only (not a JSON key): the per-RPC median, to tell a slow
            # common case from a long tail.
            record "$prov" info_rtt_8b_median_us "$(st_field "$ST_JSON" latency_us median)"
            if [[ "$prov" == "ofi+tcp;ofi_rxm" ]]; then
                log "$tag: block-mode client: self_test -s 8 -i 1 -e 0:0 -r $ST_REPS_RTT (CART_PROGRESS_MODE=block)"
                ST_MODE=block run_self_test "$prov" "$group" "$dir" 0:0 8 1 "$ST_REPS_RTT"
                rtt_c="$(calc "1e6 / $(st_field "$ST_JSON" rpc_per_sec)")"
                record "$prov" rtt_8b_us_block_client "$rtt_c"
                record "$prov" rtt_ratio_block_client "$(calc "$rtt_c / $pp_rtt")"
                log "$tag: busy-poll mode: self_test -s 8 -i 1 -e 2:0 -r $ST_REPS_RTT (both sides CART_PROGRESS_MODE=busy)"
                start_server "$prov" "$group" "$dir" 2 busy
                ST_MODE=busy run_self_test "$prov" "$group" "$dir" 2:0 8 1 "$ST_REPS_RTT"
                stop_server 2
                rtt_b="$(calc "1e6 / $(st_field "$ST_JSON" rpc_per_sec)")"
                record "$prov" rtt_8b_us_busy_poll "$rtt_b"
                record "$prov" rtt_ratio_busy_poll "$(calc "$rtt_b / $pp_rtt")"
            fi

            log "$tag: self_test -s 64 -i 1 and -i 16 -e 0-1:0 -r $ST_REPS_RATE"
            start_server "$prov" "$group" "$dir" 1 block
            run_self_test "$prov" "$group" "$dir" 0-1:0 64 1 "$ST_REPS_RATE"
            record "$prov" rpc_per_sec_64b_inflight1 "$(st_field "$ST_JSON" rpc_per_sec)"
            run_self_test "$prov" "$group" "$dir" 0-1:0 64 16 "$ST_REPS_RATE"
            record "$prov" rpc_per_sec_64b_inflight16 "$(st_field "$ST_JSON" rpc_per_sec)"
            stop_server 1
        fi

        log "$tag: fi_pingpong -p '$fprov' -S 1048576 -I $PP_ITERS_1M"
        run_pingpong "$fprov" 1048576 "$PP_ITERS_1M"
        pp_bw="$(calc "$PP_MB * 1e6 / 1048576")" # 10^6 B/s -> 2^20 B/s, self_test's MB
        record "$prov" fi_pingpong_1m_mb_per_sec "$pp_bw"
        if [[ $FI_ONLY -eq 0 ]]; then
            log "$tag: self_test -s 'b1048576 0' -i 16 -e 0:0 -r $ST_REPS_BULK"
            run_self_test "$prov" "$group" "$dir" 0:0 "b1048576 0" 16 "$ST_REPS_BULK"
            bw="$(st_field "$ST_JSON" bandwidth_mb_per_sec)"
            record "$prov" bulk_1m_mb_per_sec "$bw"
            record "$prov" bulk_ratio "$(calc "$bw / $pp_bw")"
        fi
    done
    [[ $FI_ONLY -eq 1 ]] || stop_servers
done

# Every figure is the median over runs of that figure. Ratios are medians of the per-run ratios:
# each run measures fi_pingpong and self_test back to back, so a per-run ratio compares like with
# like on this noisy VM, as the issue asks ("each as a ratio in one run").
python3 - "$RESULTS" "$JSON" "$RUNS" "${PROVIDERS[@]}" <<'EOF'
import json, statistics, sys

path, as_json, runs, wanted = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4:]
canon = {"ofi+tcp;ofi_rxm": "ofi+tcp;ofi_rxm", "ofi+tcp": "ofi+tcp;ofi_rxm", "tcp;ofi_rxm": "ofi+tcp;ofi_rxm",
         "tcp": "ofi+tcp;ofi_rxm", "ofi+shm": "ofi+shm", "shm": "ofi+shm"}
digits = {"rtt_8b_us": 3, "fi_pingpong_rtt_8b_us": 3, "rtt_ratio": 3, "rpc_per_sec_64b_inflight1": 0,
          "rpc_per_sec_64b_inflight16": 0, "bulk_1m_mb_per_sec": 1, "fi_pingpong_1m_mb_per_sec": 1,
          "bulk_ratio": 3, "rtt_8b_us_block_client": 3, "rtt_ratio_block_client": 3,
          "rtt_8b_us_busy_poll": 3, "rtt_ratio_busy_poll": 3}
vals = {}
for line in open(path):
    prov, key, val = line.rstrip("\n").split("\t")
    vals.setdefault(prov, {}).setdefault(key, []).append(float(val))
out = {}
for p in dict.fromkeys(canon[w] for w in wanted):
    r = {}
    for k, d in digits.items():
        if k in vals.get(p, {}):
            v = round(statistics.median(vals[p][k]), d)
            r[k] = int(v) if d == 0 else v
    out[p] = r
if not as_json:
    for p, r in out.items():
        print(f"{p} (median of {runs} run(s)):", file=sys.stderr)
        for k, v in r.items():
            print(f"  {k:28} {v}", file=sys.stderr)
        info = vals.get(p, {}).get("info_rtt_8b_median_us")
        if info:
            print(f"  {'(self_test median RTT, us)':28} {round(statistics.median(info), 3)}", file=sys.stderr)
print(json.dumps(out, indent=None if as_json else 2))
EOF

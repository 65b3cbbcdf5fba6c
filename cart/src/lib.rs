//! cart: the fabric RPC + bulk layer of daos-rs, modelled on DAOS CaRT over Mercury, over libfabric.
//!
//! Must not depend on: storage crates (vos, engine), placement, control. Depends on `cart-ofi-sys`
//! (raw libfabric) and `daos-common` (DER_* numbers, HLC).
//!
//! Modules:
//! - [`transport`]: the NA-like [`transport::Transport`] trait; `ofi` (libfabric, the only module
//!   with `unsafe`) and `loopback` (in-process) implementations; provider capability table.
//! - [`config`]: typed config, field > env (`D_PROVIDER`, `D_INTERFACE`, `D_DOMAIN`, `D_PORT`,
//!   `CRT_TIMEOUT`, …) > default.
//! - [`wire`]: header layout and bincode body codec with size caps.
//! - [`proto`]: protocols, opcodes (`base<<24 | version<<16 | index`), typed [`proto::Rpc`].
//! - [`context`]: [`Context`] (endpoint + CQ + progress task), send/timeout/credits, dispatch.
//! - [`bulk`]: registered scatter-gather lists, serialisable handles, GET/PUT transfers.
//! - [`group`]: groups and the attach-info file.
//! - [`selftest`]: the self-test protocol (base 0xF2) and its run loop.
//!
//! Design decisions (measurements: this 2-core VM, loopback, server and client pinned to different
//! cores, release build, medians of self_test latencies; the VM was shared with other jobs, so
//! means were noisy and only same-minute comparisons are quoted):
//! - Progress runs on the runtime that owns the context (no progress thread, no per-RPC thread
//!   hop on a current-thread runtime). The loop spins (yielding to other tasks) for `CART_SPIN_US`
//!   after the last completion or send, then blocks on the CQ wait fd via `AsyncFd` (tcp) or polls
//!   with back-off 10 µs → 640 µs → 1 ms (shm has no wait fd). Spin window vs median round trip,
//!   8 B at 1 in flight, one run: tcp;ofi_rxm 0 µs → 56.2 µs (every reply waits for an fd wake-up),
//!   50 µs → 13.0, 200 µs → 12.2, 1000 µs → 12.4; shm 0 → 99.2 µs (back-off sleeps), 50 → 2.71,
//!   200 → 2.67, 1000 → 2.65. Default 200 µs: full speed for back-to-back RPCs with margin for a
//!   briefly descheduled peer; an idle context costs 0.2 % (tcp) / 2 % (shm, two contexts) of a
//!   core (cart_server CPU time over 5 s idle).
//! - While spinning, the loop yields to other tasks by waking itself (no `epoll_wait` per poll, as
//!   `tokio::task::yield_now` would do) and, after 5 µs without work, calls sched_yield on each
//!   poll so co-located servers do not starve each other (numbers in `context.rs`).
//! - Replies are unexpected messages matched by RPC id (no expected/tagged receive per RPC).
//! - Bodies above the inline limit travel as bulk automatically, both ways (Mercury's overflow):
//!   the receiver pulls them with `fi_read`; a reply's owner frees it on a RELEASE message. The
//!   default limit is DAOS's 19 KiB. Measured crossover (send N bytes, empty reply, 1 in flight,
//!   inline limit raised to 1 MiB, median µs inline/bulk): tcp;ofi_rxm 8 KiB 13.7/22.4, 16 KiB
//!   29.7/24.5, 64 KiB 41.3/32.0; shm 4 KiB 4.9/5.5, 8 KiB 6.0/5.5, 64 KiB 18.8/7.6. So bulk wins
//!   from ~8–16 KiB on tcp and ~4–8 KiB on shm; 19 KiB is kept for DAOS compatibility (at 19 KiB
//!   inline costs 29.8 vs 24.0 µs on tcp, 8.5 vs 6.2 µs on shm) and is one `CART_INLINE_LIMIT` away.
//! - Dead peers (context/liveness.rs): a SIGKILLed server's delivered RPCs get no error from
//!   `tcp;ofi_rxm` (their sends completed) and a later send to it is refused with EAGAIN forever
//!   (rxm re-connects on each attempt). So a peer with an RPC pending > 1 s gets a PING answered by
//!   its progress loop; a post refused for 1 s, a failed send or a ping unanswered for 2 s marks the
//!   peer dead, fails its pending RPCs with DER_UNREACH at once, and new sends fail fast for a
//!   back-off (0.5 s doubling to 8 s; then one send is let through). Measured (release, tcp,
//!   `self_test -s 8 -r 200000 -i 4`, server SIGKILLed 1 s in, default 60 s timeout): self_test
//!   exited 2.2 s after the kill with 196824 × -DER_UNREACH (before: still running after 89 s).
//! - `selftest::run` drives its loop from a spawned task, never from a `block_on` future (a
//!   current-thread runtime polls its `block_on` future once per 61 task polls while the progress
//!   task spins). Each in-flight slot is a chain of completion callbacks ([`Context::send_cb`],
//!   CaRT's `crt_req_send` with a callback, as DAOS's self-test uses it): a reply's callback, run
//!   on the progress loop, records the sample and sends the slot's next RPC, so no task wake-up or
//!   scheduler pass sits between a reply and the next request. A server answers a handler
//!   registered with [`Protocol::handler_now`] on the spot (no future is built) and polls an async
//!   handler once inline, replying without a task hop when it is ready.
//! - The RPC path per round trip, trimmed on 2026-11-26 and measured with `examples/ctx_overhead`
//!   (two contexts over the loopback transport on one thread, 8 B self-test RPCs, 1 in flight,
//!   ns per RPC, three runs each): start 1,638-1,677; self-test handler future boxed below glibc's
//!   large-bin size (a 1.8 KiB future made every request a `malloc_consolidate`) 1,579-1,607;
//!   per-RPC timeouts expired by the progress loop instead of a tokio timer per RPC 1,509-1,514;
//!   no second pending-map lookup after completion 1,447-1,471; HLC physical time read once per
//!   completion batch 1,415-1,432; bodies encoded straight into the message buffer (wire v2 puts
//!   the body before the source address) 1,362-1,377; a fair counting gate (one atomic per take
//!   and return) instead of tokio semaphores for credits and quota 1,308-1,319 (1,277-1,292 with
//!   neither); completion callbacks for self-test 835-841. Probes on the real shm path (8 B, 1 in
//!   flight, probes' own clock reads included): server request to reply send 281 ns as an async
//!   handler, 243 as an immediate one, ~208 with HLC stamps from the loop's clock; client reply to
//!   next send ~270 ns with callbacks. Then the poll period: a progress-loop iteration took 254 ns
//!   (server) and 381 ns (client), so an arriving message waited half of that to be noticed;
//!   `ProviderCaps::tight_polls` empty polls in a row (shm 16) took shm round trips from
//!   1.80-1.89 to 1.73-1.86 µs in alternating runs (tcp keeps 1: an empty poll is a syscall there,
//!   and 16 cut two co-located servers' rate from 70.8k to 48.6k RPC/s). fabric.sh,
//!   `--runs 3`, before → after this work (same harness): shm 2.58 → 1.95-1.99 µs (ratio
//!   2.13-2.33 → 1.62-1.69), tcp block 11.57 → 10.68-10.74 µs (1.42 → 1.26-1.28), tcp busy
//!   10.06-10.27 → 9.09-9.23 µs (1.21 → 1.08-1.10); with fabric.sh measuring RTT and bulk on a
//!   server alone on its core: shm 1.83-1.88 µs (1.54-1.61), tcp 10.34-10.44 µs (1.22-1.24), busy
//!   9.17-9.18 µs (1.09-1.10). Tried and dropped in that work (no change beyond noise):
//!   re-posting receives after the woken caller ran, `FI_THREAD_DOMAIN`, a per-thread cache of the
//!   last sender's address, 64 tight polls, fewer receive buffers.
//! - Second pass (later on 2026-11-26), measured with rdtsc probes on the real shm path (8 B, 1 in
//!   flight; temporary, not in the tree): each side's RPC layer took ~230-310 ns, each `fi_send`
//!   310-430 ns inside libfabric. Cut since: self-test samples recorded lock-free per RPC index,
//!   the endpoint state resolved once per run, the request read where it lies and the reply
//!   encoded from the session's pattern (`handler_raw`), the reply checked without decoding an
//!   owned Vec (`send_cb_raw`), one reference for both permits of a callback RPC, handlers
//!   dispatched with a borrowed `RpcRef`, a per-thread cached self-test session: ctx_overhead
//!   850 → 745-763 ns per RPC, server dispatch-to-handler-return 114 → 72 ns. Then
//!   `ProviderCaps::poll_pauses` (`CART_POLL_PAUSES`, shm 8): pause hints before each tight poll,
//!   because the peer's sends write the same shared region whose lines back-to-back polls keep
//!   taking (bare transport ping-pong 1.35 → 1.18-1.24 µs; self_test 1.73-1.83 → 1.59-1.70 µs).
//!   fabric.sh after both: shm 1.64-1.70 µs (ratio 1.34-1.44), tcp with self_test's busy client
//!   9.93-9.95 µs (1.13-1.17), both sides block 10.06-10.47 µs (1.19-1.20).
//! - The CQ wait fd is registered with tokio's reactor only while the loop sleeps (two epoll_ctl
//!   per sleep), not for the context's life: while registered, every packet also runs the wake-up
//!   callback of tokio's epoll, busy or not. tcp, 8 B, 1 in flight, median µs, 3 alternating
//!   pairs: 11.16/11.05/11.24 registered for good, 10.60/10.64/10.93 per sleep. Measured on a raw
//!   endpoint ping-pong (no cart, busy polling): `FI_WAIT_FD` alone costs 9.6–9.8 µs per round trip
//!   against 8.7–9.0 with `FI_WAIT_NONE` and fi_pingpong's 8.5–8.9 (rxm then nests the tcp CQ's
//!   epoll fd in ours); `FI_WAIT_POLLFD` was tried and rejected: over tcp;ofi_rxm 1.17 its fd list
//!   held one always-readable fd, so an idle context spun (the idle-CPU test catches that).
//! - `CART_PROGRESS_MODE=busy` (Mercury's `NA_NO_BLOCK`) opens the CQ without a wait object:
//!   a C ping-pong on raw tcp;ofi_rxm endpoints (8 B, both sides polling, same run) took 7.05-7.43
//!   µs per round trip with `FI_WAIT_NONE` and 8.53-8.57 µs with `FI_WAIT_FD`, whether the wait
//!   fd is on one CQ or only on the receive or transmit CQ of a split pair. The cost sits in the
//!   tcp CQ that rxm opens under ours: `FI_OFI_RXM_DEF_TCP_WAIT_OBJ=pollfd` removed it (7.37 µs)
//!   but then our wait fd never woke for an arriving message (the conformance test
//!   `tcp_sleeping_endpoint_wakes_when_a_message_arrives` fails with it),
//!   so it is not used. `fi_inject` instead of `fi_send` and 8-200 B messages changed nothing
//!   measurable. In busy mode an idle context polls with the shm back-off (first RPC after a long
//!   idle waits up to ~1 ms); `block` stays the default. fabric.sh (same runs): tcp rtt 10.20 /
//!   10.21 µs busy against 12.03 / 11.02 block (fi_pingpong 8.34 / 8.48). Polling the CQ from the
//!   caller's own task while its RPC is the only one in flight (DAOS's blocking-call style) was
//!   tried: no gain beyond noise (tcp 11.5-11.7 vs 11.8-11.9 µs, shm 2.56-2.71 vs 2.57-2.68).
//! - Where a tcp round trip went before that trimming (busy mode, 8 B, 1 in flight; both processes stamped the same
//!   400 RPCs with the shared wall clock, medians, one run, full cycle 10.1 µs): client encode +
//!   `fi_send` 2.68 µs, wire + server poll 1.74, server decode + handler + reply encode 0.43, the
//!   reply's `fi_send` 2.63, wire + client poll 1.72, client reply match 0.10, task wake 0.21,
//!   self_test's loop + `call` prologue 0.45. `fi_send` is the tcp provider's `sendmsg` done inline
//!   (a C ping-pong's own `fi_send` takes 2.29 µs for 8 B, 2.53 µs for 150 B), so of the 2.4 µs
//!   between cart and that ping-pong about 1.2 µs is cart's own work, spread over a dozen steps of
//!   0.1-0.45 µs, and the rest is poll-detection delay and larger messages (56 B header).
//! - The self-test service keeps `CART_BULK_INFLIGHT` buffers per session (shm 1, tcp 4), and
//!   the client exposes one read-only BULK_GET source for all its slots: 1 MiB BULK_GET at 16 in
//!   flight over shm went from 8.5–8.9 GB/s (a buffer per slot on both sides: 32 MiB of cold memory
//!   per round of copies) to 18.0 GB/s, fi_pingpong's 18.0–18.3 (it reuses one buffer). Measured
//!   memcpy of 1 MiB here: 32 GB/s in cache, 13.4 GB/s once the working set exceeds the 2 MiB L2.
//! - DAOS API pieces beyond plain send: `Context::proto_query` (`crt_proto_query`, internal
//!   opcode 0xFF v4 index 1: the highest common version, DER_UNREG/DER_MISMATCH otherwise),
//!   `Context::abort` (`crt_ep_abort`: pending RPCs of a rank or endpoint fail with
//!   DER_CANCELED), `D_QUOTA_RPCS` (64 RPCs in flight per context, on top of the 32 credits per
//!   endpoint), and HLC epsilon enforcement: a request whose clock is more than 1 s ahead gets a
//!   DER_HLC_SYNC reply and a reply from such a clock fails its RPC with DER_HLC_SYNC.
//! - Provider quirks live in one table ([`transport::PROVIDERS`]); libfabric 1.17 pulls in
//!   libinfinipath, whose constructor installs exit(1) SIGINT/SIGTERM handlers: servers call
//!   [`transport::ofi::restore_default_signals`] before installing their own.
#![deny(unsafe_code)]

pub mod bulk;
pub mod config;
pub mod context;
pub mod error;
pub mod group;
pub mod proto;
pub mod selftest;
pub mod transport;
pub mod wire;

pub use bulk::{Bulk, BulkHandle, BulkOp};
pub use config::Config;
pub use context::{Context, Endpoint, RpcCtx, RpcRef};
pub use error::{CartError, RpcError};
pub use group::Group;
pub use proto::{opcode, Handled, Protocol, Rpc};

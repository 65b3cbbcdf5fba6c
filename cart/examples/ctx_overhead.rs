//! cart's own per-RPC cost, client and server together, without a fabric: a self-test run (8 B IOV
//! each way, 1 in flight) between two contexts over the in-process loopback transport on one
//! current-thread runtime. `ctx_overhead [RPCS]` prints `{"ns_per_rpc": …}`. Used to find and
//! check RPC-layer costs with `perf record` (no fabric wait in the profile).
use std::sync::Arc;

use cart::config::Config;
use cart::selftest::{run, MsgSpec, MsgType, RunOpts};
use cart::transport::loopback::LoopbackTransport;
use cart::{Context, Endpoint, Group};

fn ctx(rank: u32) -> Context {
    let cfg = Config {
        provider: None,
        ..Default::default()
    }
    .resolve()
    .unwrap();
    Context::with_transport(
        Arc::new(LoopbackTransport::new(cfg.inline_limit + 1024)),
        cfg,
        rank,
        0,
    )
    .unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let srv = ctx(0);
        let cli = ctx(1);
        let g = Group::new("g", [(0, srv.uri().to_string())]);
        let ep = Endpoint::new(&g, 0, 0);
        let n: u32 = std::env::args()
            .nth(1)
            .map_or(1_000_000, |s| s.parse().unwrap());
        let m = MsgSpec {
            ty: MsgType::Iov,
            size: 8,
        };
        let r = run(&cli, &[ep], m, m, n, 1, RunOpts::default())
            .await
            .unwrap();
        println!(
            "{{\"ns_per_rpc\": {:.0}}}",
            r.duration_ns as f64 / f64::from(n)
        );
    });
}

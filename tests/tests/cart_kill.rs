//! A `cart_server` killed with SIGKILL mid-stream, with the DEFAULT 60 s RPC timeout: the client's
//! pending RPCs fail with `DER_UNREACH` within seconds (liveness probe), new sends to the dead rank
//! fail fast, a restarted server on the same address is reachable again, `self_test` finishes and
//! reports the failures, and a slow handler on a live server is not mistaken for a dead peer.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cart::selftest::Sleep;
use cart::{Config, Context, Endpoint, Group};
use daos_common::{DaosErrno, Der};
use tests::{bin_path, free_port, ChildGuard};

const TCP: &str = "ofi+tcp;ofi_rxm";

fn start_server(dir: &Path, port: u16, log: &str) -> ChildGuard {
    let mut cmd = Command::new(bin_path("cart_server"));
    cmd.args(["--group-name", "kill", "--rank", "0", "--path"])
        .arg(dir)
        .env("D_PROVIDER", TCP)
        .env("D_PORT", port.to_string())
        .env_remove("CRT_TIMEOUT");
    let mut g = ChildGuard::spawn("cart_server", cmd, &dir.join(log)).expect("spawn cart_server");
    g.wait_for_line("cart_server ready", Duration::from_secs(30))
        .expect("server ready");
    g
}

fn client() -> Context {
    let cfg = Config {
        provider: Some(TCP.into()),
        ..Default::default()
    };
    let ctx = Context::new(&cfg, 1000, 0).unwrap();
    assert_eq!(
        ctx.config().timeout,
        Duration::from_secs(60),
        "this test is about the DEFAULT timeout"
    );
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_fails_pending_rpcs_fast_and_restart_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_server(dir.path(), port, "s1.log");
    let group: Arc<Group> = Group::attach(dir.path(), "kill").unwrap();
    let ctx = client();
    let ep = Endpoint::new(&group, 0, 0);
    ctx.send(&ep, &Sleep { ms: 0 }).await.unwrap();

    // A client loop: 4 in flight, default timeout, until the server is gone (bounded).
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (ctx, ep, done) = (ctx.clone(), ep.clone(), done.clone());
        set.spawn(async move {
            for _ in 0..1_000_000u32 {
                // Sleeping handlers keep RPCs pending on the server when it dies.
                if let Err(e) = ctx.send(&ep, &Sleep { ms: 1 }).await {
                    return Some(e);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None
        });
    }
    // Kill once RPCs are flowing (bounded wait on a counter, not a sleep for synchronisation).
    let t = Instant::now();
    while done.load(std::sync::atomic::Ordering::Relaxed) < 200 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "RPCs are not flowing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal(libc::SIGKILL);
    assert!(server.wait_timeout(Duration::from_secs(10)).is_some());
    let killed = Instant::now();
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        errors.push(r.unwrap().expect("loop ended by an error"));
    }
    let took = killed.elapsed();
    assert_eq!(errors.len(), 4);
    for e in &errors {
        assert_eq!(e.der(), Der::Unreach, "pending RPC failed with {e}");
    }
    assert!(
        took < Duration::from_secs(10),
        "pending RPCs took {took:?} to fail (default timeout is 60 s)"
    );

    // New sends to the known-dead peer fail fast with DER_UNREACH.
    let t = Instant::now();
    let e = ctx.send(&ep, &Sleep { ms: 0 }).await.unwrap_err();
    assert_eq!(e.der(), Der::Unreach, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    // A server restarted on the same address is reachable again after the back-off.
    let _server2 = start_server(dir.path(), port, "s2.log");
    let t = Instant::now();
    loop {
        match ctx.send(&ep, &Sleep { ms: 0 }).await {
            Ok(()) => break,
            Err(e) => {
                assert_eq!(e.der(), Der::Unreach, "{e}");
                assert!(
                    t.elapsed() < Duration::from_secs(40),
                    "restarted server still unreachable: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handler_on_live_server_is_not_a_dead_peer() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start_server(dir.path(), free_port(), "s.log");
    let group = Group::attach(dir.path(), "kill").unwrap();
    let ctx = client();
    let ep = Endpoint::new(&group, 0, 0);
    // Pending longer than probe-after + probe-timeout: the server's progress loop answers the
    // liveness probes, so the RPC completes normally.
    let t = Instant::now();
    ctx.send(&ep, &Sleep { ms: 4_000 }).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(4));
}

#[test]
fn self_test_finishes_promptly_after_sigkill_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(dir.path(), free_port(), "s.log");
    let mut cmd = Command::new(bin_path("self_test"));
    cmd.args(["-g", "kill", "-p"])
        .arg(dir.path())
        .args(["-e", "0:0", "-s", "8", "-r", "200000", "-i", "4"])
        .env("D_PROVIDER", TCP)
        .env_remove("CRT_TIMEOUT");
    let mut st =
        ChildGuard::spawn("self_test", cmd, &dir.path().join("st.log")).expect("spawn self_test");
    st.wait_for_line("Max in-flight RPCs", Duration::from_secs(30))
        .expect("self_test started");
    server.signal(libc::SIGKILL);
    assert!(server.wait_timeout(Duration::from_secs(10)).is_some());
    let killed = Instant::now();
    let status = st.wait_timeout(Duration::from_secs(30));
    let log = st.log_text();
    let status =
        status.unwrap_or_else(|| panic!("self_test still running 30 s after the kill:\n{log}"));
    assert!(status.success(), "self_test failed:\n{log}");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "self_test took {:?} after the kill",
        killed.elapsed()
    );
    assert!(log.contains("RPC Failures:"), "{log}");
    assert!(
        log.contains("-DER_UNREACH"),
        "failures not reported:\n{log}"
    );
}

//! Multi-process cart tests: real `cart_server` processes (tcp;ofi_rxm and shm), a client context in
//! the test process, RPCs of 0 B to 8 MiB inline and by bulk with every byte checked, the clear
//! errors, a SIGKILLed server, and 10,000 RPCs with 64 in flight.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cart::selftest::{Echo, Sleep};
use cart::{opcode, CartError, Config, Context, Endpoint, Group, Rpc};
use daos_common::{DaosErrno, Der};
use tests::{bin_path, echo_sizes, ChildGuard};

/// `mode` is `CART_PROGRESS_MODE` (block or busy).
fn start_server_mode(
    dir: &Path,
    provider: &str,
    rank: u32,
    contexts: u32,
    mode: &str,
) -> ChildGuard {
    let mut cmd = Command::new(bin_path("cart_server"));
    cmd.args(["--group-name", "grp", "--rank", &rank.to_string(), "--path"])
        .arg(dir)
        .args(["--contexts", &contexts.to_string()])
        .env("D_PROVIDER", provider)
        .env("CART_PROGRESS_MODE", mode)
        .env_remove("D_PORT");
    let log = dir.join(format!("server{rank}.log"));
    let mut g =
        ChildGuard::spawn(&format!("cart_server {rank}"), cmd, &log).expect("spawn cart_server");
    g.wait_for_line("cart_server ready", Duration::from_secs(30))
        .expect("server ready");
    g
}

struct Cluster {
    _dir: tempfile::TempDir,
    servers: Vec<ChildGuard>,
    group: Arc<Group>,
}

fn cluster(provider: &str, n: u32, contexts: u32) -> Cluster {
    cluster_mode(provider, n, contexts, "block")
}

fn cluster_mode(provider: &str, n: u32, contexts: u32, mode: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let servers: Vec<_> = (0..n)
        .map(|r| start_server_mode(dir.path(), provider, r, contexts, mode))
        .collect();
    let group = Group::attach(dir.path(), "grp").unwrap();
    assert_eq!(group.size(), n as usize, "every server published its URI");
    Cluster {
        _dir: dir,
        servers,
        group,
    }
}

fn client(provider: &str) -> Context {
    Context::new(
        &Config {
            provider: Some(provider.into()),
            ..Default::default()
        },
        1000,
        0,
    )
    .unwrap()
}

const SIZES: &[usize] = &[0, 1, 4096, 19 * 1024, 19 * 1024 + 1, 1 << 20, 8 << 20];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_two_servers_two_tags_every_byte() {
    let c = cluster("ofi+tcp;ofi_rxm", 2, 2);
    let ctx = client("ofi+tcp;ofi_rxm");
    for (rank, tag) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        echo_sizes(&ctx, &Endpoint::new(&c.group, rank, tag), SIZES).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shm_four_servers_every_byte() {
    let c = cluster("ofi+shm", 4, 1);
    let ctx = client("ofi+shm");
    for rank in 0..4 {
        echo_sizes(
            &ctx,
            &Endpoint::new(&c.group, rank, 0),
            &[0, 4096, 19 * 1024 + 1, 8 << 20],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_from_real_servers() {
    let c = cluster("ofi+tcp;ofi_rxm", 1, 1);
    let ctx = client("ofi+tcp;ofi_rxm");
    let ep = Endpoint::new(&c.group, 0, 0);
    let e = ctx
        .send_with(&ep, &Sleep { ms: 5000 }, Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Timedout, "{e}");
    let e = ctx
        .send(&Endpoint::new(&c.group, 7, 0), &Sleep { ms: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Oog, "{e}");
    let e = ctx
        .call_raw(&ep, opcode(0x77, 1, 0), Vec::new(), None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Unreg, "{e}");
    let e = ctx
        .call_raw(&ep, Echo::OPCODE, vec![0xff; 5], None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Proto, "{e}");
    let e = ctx
        .send(&Endpoint::new(&c.group, 0, 4), &Sleep { ms: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist, "{e}");
    // The server is still healthy after all that.
    ctx.send(&ep, &Sleep { ms: 0 }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rpcs_sixty_four_in_flight() {
    let c = cluster("ofi+tcp;ofi_rxm", 2, 1);
    let ctx = client("ofi+tcp;ofi_rxm");
    let eps = [Endpoint::new(&c.group, 0, 0), Endpoint::new(&c.group, 1, 0)];
    let total = 10_000u32;
    let mut seen = vec![false; total as usize];
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0u32;
    let spawn = |set: &mut tokio::task::JoinSet<_>, i: u32| {
        let (ctx, ep) = (ctx.clone(), eps[i as usize % 2].clone());
        set.spawn(async move {
            (
                i,
                ctx.send(
                    &ep,
                    &Echo {
                        data: i.to_le_bytes().to_vec(),
                        bulk: None,
                        put_back: None,
                    },
                )
                .await,
            )
        });
    };
    while next < 64 {
        spawn(&mut set, next);
        next += 1;
    }
    while let Some(r) = set.join_next().await {
        let (i, reply) = r.unwrap();
        let reply = reply.unwrap_or_else(|e| panic!("RPC {i}: {e}"));
        let got = u32::from_le_bytes(reply.try_into().expect("4-byte reply"));
        assert_eq!(got, i, "reply matched to the wrong RPC");
        assert!(!seen[i as usize], "RPC {i} completed twice");
        seen[i as usize] = true;
        if next < total {
            spawn(&mut set, next);
            next += 1;
        }
    }
    assert!(seen.iter().all(|&s| s), "some RPCs never completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_fails_pending_rpcs_promptly() {
    let c = cluster("ofi+tcp;ofi_rxm", 1, 1);
    let ctx = client("ofi+tcp;ofi_rxm");
    let ep = Endpoint::new(&c.group, 0, 0);
    ctx.send(&ep, &Sleep { ms: 0 }).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (ctx, ep) = (ctx.clone(), ep.clone());
        set.spawn(async move {
            ctx.send_with(&ep, &Sleep { ms: 60_000 }, Some(Duration::from_secs(3)))
                .await
        });
    }
    // Give the requests time to reach the server so the kill lands mid-stream. Not a
    // synchronisation: the assertions below hold whether or not they arrived.
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.servers[0].signal(libc::SIGKILL);
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let e = r.unwrap().unwrap_err();
        assert!(
            matches!(e.der(), Der::Unreach | Der::Timedout),
            "unexpected error {e}"
        );
        n += 1;
    }
    assert_eq!(n, 40);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "pending RPCs took {:?} to fail",
        t0.elapsed()
    );
    // New RPCs to the dead rank fail too, they do not hang.
    let t1 = Instant::now();
    let e = ctx
        .send_with(&ep, &Sleep { ms: 0 }, Some(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, CartError::Unreachable { .. } | CartError::Timeout { .. }),
        "{e}"
    );
    assert!(t1.elapsed() < Duration::from_secs(5));
}

/// CPU time (user + system, in clock ticks) a process has used so far, from /proc/<pid>/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A server that has served RPCs and then goes idle stops spinning: its contexts block on the CQ
/// wait fd (tcp) or back off (shm, and tcp in busy-poll mode) instead of burning a core, and
/// still answer the next RPC. A spinning server uses ~100 ticks per second per context; the
/// bound allows 15 % of one core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_servers_do_not_burn_a_core() {
    for (provider, mode) in [
        ("ofi+tcp;ofi_rxm", "block"),
        ("ofi+tcp;ofi_rxm", "busy"),
        ("ofi+shm", "block"),
    ] {
        let c = cluster_mode(provider, 1, 2, mode);
        let ctx = client(provider);
        for tag in 0..2 {
            echo_sizes(&ctx, &Endpoint::new(&c.group, 0, tag), &[8, 19 * 1024 + 1]).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pid = c.servers[0].pid();
        let t0 = Instant::now();
        let before = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = cpu_ticks(pid) - before;
        let secs = t0.elapsed().as_secs_f64();
        assert!(
            (used as f64) < 0.15 * 100.0 * secs,
            "{provider} ({mode}): idle cart_server with 2 contexts used {used} CPU ticks in {secs:.1} s"
        );
        for tag in 0..2 {
            echo_sizes(&ctx, &Endpoint::new(&c.group, 0, tag), &[8]).await;
        }
    }
}

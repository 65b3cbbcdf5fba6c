//! The RPC-layer suite, run once per transport (loopback, ofi tcp;ofi_rxm, ofi shm): two contexts in
//! one process, typed RPCs with inline and overflowed bodies checked byte by byte, the clear errors
//! (unknown opcode, version mismatch, malformed body, timeout, unknown rank, unknown tag), credits
//! with 10,000 RPCs at 64 in flight, one-way RPCs, and scatter-gather bulk GET/PUT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cart::config::Config;
use cart::transport::loopback::LoopbackTransport;
use cart::transport::{Access, DmaBuf};
use cart::{
    opcode, BulkHandle, BulkOp, CartError, Context, Endpoint, Group, Handled, Protocol, Rpc,
    RpcCtx, RpcError,
};
use daos_common::{DaosErrno, Der};

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Echo {
    data: Vec<u8>,
    reply_len: u32,
}
impl Rpc for Echo {
    const OPCODE: u32 = opcode(0x20, 1, 0);
    type Reply = (u64, Vec<u8>);
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Sleep {
    ms: u64,
}
impl Rpc for Sleep {
    const OPCODE: u32 = opcode(0x20, 1, 1);
    type Reply = ();
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Count {
    n: u64,
}
impl Rpc for Count {
    const OPCODE: u32 = opcode(0x20, 1, 2);
    type Reply = u64;
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct BulkReq {
    handle: BulkHandle,
    op_put: bool,
    len: u64,
    remote_off: u64,
}
impl Rpc for BulkReq {
    const OPCODE: u32 = opcode(0x20, 1, 3);
    type Reply = Vec<u8>;
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2654435761).wrapping_add(seed) >> 7) as u8)
        .collect()
}

fn checksum(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn test_protocol(counter: Arc<AtomicU64>) -> Protocol {
    Protocol::new("test", 0x20, 1)
        .handler(|_c: RpcCtx, r: Echo| async move {
            Ok((
                checksum(&r.data),
                pattern(r.reply_len as usize, r.data.len() as u64),
            ))
        })
        .handler(|_c: RpcCtx, r: Sleep| async move {
            tokio::time::sleep(Duration::from_millis(r.ms)).await;
            Ok(())
        })
        .handler(move |_c: RpcCtx, r: Count| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(r.n)
            }
        })
        .handler(|c: RpcCtx, r: BulkReq| async move {
            // Server side scatter-gather list of three uneven segments.
            let segs = vec![
                DmaBuf::zeroed(1000),
                DmaBuf::zeroed(5000),
                DmaBuf::zeroed(r.len as usize),
            ];
            let local = c
                .bulk_create(segs, Access::ReadWrite)
                .map_err(|e| RpcError::from(&e))?;
            if r.op_put {
                let src = pattern(local.len() as usize, 99);
                let mut off = 0;
                for s in local.segments() {
                    s.buf.write_at(0, &src[off..off + s.len()]).unwrap();
                    off += s.len();
                }
                c.bulk_transfer(BulkOp::Put, &r.handle, r.remote_off, &local, 700, r.len)
                    .await
                    .map_err(|e| RpcError::from(&e))?;
                Ok(Vec::new())
            } else {
                c.bulk_transfer(BulkOp::Get, &r.handle, r.remote_off, &local, 700, r.len)
                    .await
                    .map_err(|e| RpcError::from(&e))?;
                Ok(local.to_vec()[700..700 + r.len as usize].to_vec())
            }
        })
}

struct Pair {
    client: Context,
    server: Context,
    group: Arc<Group>,
    counter: Arc<AtomicU64>,
}

fn setup(make: &dyn Fn(u32) -> Context) -> Pair {
    let server = make(0);
    let counter = Arc::new(AtomicU64::new(0));
    server.register(test_protocol(counter.clone())).unwrap();
    let client = make(0);
    let group = Group::new("g", [(0, server.uri().to_string())]);
    Pair {
        client,
        server,
        group,
        counter,
    }
}

async fn suite(make: &dyn Fn(u32) -> Context) {
    let p = setup(make);
    let ep = Endpoint::new(&p.group, 0, 0);
    let c = &p.client;

    // Inline and overflowed bodies both ways, every byte checked.
    for &n in &[
        0usize,
        1,
        1024,
        19 * 1024 - 64,
        19 * 1024 + 1,
        100_000,
        1 << 20,
        8 << 20,
    ] {
        let data = pattern(n, n as u64);
        let (sum, back) = c
            .send(
                &ep,
                &Echo {
                    data: data.clone(),
                    reply_len: n as u32,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("echo {n}: {e}"));
        assert_eq!(sum, checksum(&data), "request body of {n} bytes corrupted");
        assert_eq!(
            back,
            pattern(n, n as u64),
            "reply body of {n} bytes corrupted"
        );
    }

    // Unknown opcode, version mismatch, malformed body: clear error replies.
    let e = c
        .call_raw(&ep, opcode(0x21, 1, 0), vec![], None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Unreg, "{e}");
    let e = c
        .call_raw(&ep, opcode(0x20, 1, 9), vec![], None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Unreg, "{e}");
    let e = c
        .call_raw(&ep, opcode(0x20, 2, 0), vec![], None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Mismatch, "{e}");
    let e = c
        .call_raw(&ep, Echo::OPCODE, vec![0xff; 7], None)
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Proto, "{e}");
    assert!(e.to_string().contains("undecodable"), "{e}");

    // Timeout (per-RPC override), and the context still works afterwards. The RPC fails at its
    // deadline (the progress loop expires it), neither before it nor when the handler finishes.
    let t0 = std::time::Instant::now();
    let e = c
        .send_with(&ep, &Sleep { ms: 2000 }, Some(Duration::from_millis(150)))
        .await
        .unwrap_err();
    let waited = t0.elapsed();
    assert!(matches!(e, CartError::Timeout { .. }), "{e}");
    assert_eq!(e.der(), Der::Timedout);
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_millis(1500),
        "a 150 ms timeout fired after {waited:?}"
    );
    assert_eq!(c.send(&ep, &Count { n: 5 }).await.unwrap(), 5);

    // Unknown rank and unknown tag.
    let e = c
        .send(&Endpoint::new(&p.group, 9, 0), &Count { n: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Oog, "{e}");
    let e = c
        .send(&Endpoint::new(&p.group, 0, 3), &Count { n: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist, "{e}");

    // 10,000 RPCs with 64 in flight (credits cap the wire at 32): none lost or duplicated.
    let before = p.counter.load(Ordering::SeqCst);
    let mut set = tokio::task::JoinSet::new();
    let mut seen = vec![false; 10_000];
    let mut next = 0u64;
    while next < 64 {
        let (c, ep) = (c.clone(), ep.clone());
        set.spawn(async move { c.send(&ep, &Count { n: next }).await });
        next += 1;
    }
    while let Some(r) = set.join_next().await {
        let n = r.unwrap().unwrap() as usize;
        assert!(!seen[n], "reply {n} duplicated");
        seen[n] = true;
        if next < 10_000 {
            let (c, ep) = (c.clone(), ep.clone());
            let k = next;
            set.spawn(async move { c.send(&ep, &Count { n: k }).await });
            next += 1;
        }
    }
    assert!(seen.iter().all(|&s| s), "replies lost");
    assert_eq!(
        p.counter.load(Ordering::SeqCst) - before,
        10_000,
        "server executed a request twice or lost one"
    );

    // One-way RPCs run on the server.
    let before = p.counter.load(Ordering::SeqCst);
    for i in 0..10 {
        c.send_oneway(&ep, &Count { n: i }).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.counter.load(Ordering::SeqCst) < before + 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "one-way RPCs not executed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Bulk: the server pulls from / pushes into a two-segment client list at offsets.
    let len = 3 * 4096 + 17;
    let a = pattern(9000, 1);
    let b = pattern(20_000, 2);
    let bulk = c
        .bulk_create(
            vec![DmaBuf::from_vec(a.clone()), DmaBuf::from_vec(b.clone())],
            Access::ReadOnly,
        )
        .unwrap();
    let got = c
        .send(
            &ep,
            &BulkReq {
                handle: bulk.handle(),
                op_put: false,
                len: len as u64,
                remote_off: 100,
            },
        )
        .await
        .unwrap();
    let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
    assert_eq!(got, whole[100..100 + len]);
    // A window of the handle (as `-a` alignment uses) addresses the right bytes, across segments.
    let sub = bulk.handle().sub(50, 9000).unwrap();
    let got = c
        .send(
            &ep,
            &BulkReq {
                handle: sub,
                op_put: false,
                len: 100,
                remote_off: 8900,
            },
        )
        .await
        .unwrap();
    assert_eq!(got, whole[8950..9050]);
    // PUT into a read-only handle is refused with a clear error.
    let e = c
        .send(
            &ep,
            &BulkReq {
                handle: bulk.handle(),
                op_put: true,
                len: 10,
                remote_off: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Inval, "{e}");
    let rw = c
        .bulk_create(
            vec![DmaBuf::zeroed(5000), DmaBuf::zeroed(30_000)],
            Access::ReadWrite,
        )
        .unwrap();
    c.send(
        &ep,
        &BulkReq {
            handle: rw.handle(),
            op_put: true,
            len: len as u64,
            remote_off: 3,
        },
    )
    .await
    .unwrap();
    let server_src = pattern(1000 + 5000 + len, 99);
    let mine = rw.to_vec();
    assert_eq!(&mine[3..3 + len], &server_src[700..700 + len]);
    assert!(mine[..3].iter().all(|&x| x == 0) && mine[3 + len..].iter().all(|&x| x == 0));
    // Out-of-range remote offset is an error, not a crash.
    let e = c
        .send(
            &ep,
            &BulkReq {
                handle: bulk.handle(),
                op_put: false,
                len: 100,
                remote_off: 28_950,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Inval, "{e}");

    // Protocol version query (DAOS crt_proto_query): highest common version, clear errors.
    assert_eq!(c.proto_query(&ep, 0x20, &[3, 1, 2]).await.unwrap(), 1);
    assert_eq!(c.proto_query(&ep, 0xF2, &[1]).await.unwrap(), 1);
    let e = c.proto_query(&ep, 0x20, &[2, 3]).await.unwrap_err();
    assert_eq!(e.der(), Der::Mismatch, "{e}");
    let e = c.proto_query(&ep, 0x77, &[1]).await.unwrap_err();
    assert_eq!(e.der(), Der::Unreg, "{e}");

    // Abort (DAOS crt_ep_abort): a pending RPC fails with DER_CANCELED at once; the endpoint
    // keeps working afterwards.
    let c2 = c.clone();
    let ep2 = ep.clone();
    let slow = tokio::spawn(async move { c2.send(&ep2, &Sleep { ms: 20_000 }).await });
    let t0 = std::time::Instant::now();
    let mut aborted = 0;
    while aborted == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "RPC never pending");
        tokio::task::yield_now().await;
        aborted = c.abort(&p.group, 0, None);
    }
    assert_eq!(aborted, 1);
    let e = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("aborted RPC returns at once")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.der(), Der::Canceled, "{e}");
    assert_eq!(c.abort(&p.group, 0, Some(0)), 0, "nothing left to abort");
    c.send(&ep, &Sleep { ms: 0 }).await.unwrap();

    drop(p.server);
}

fn loopback_ctx(rank: u32) -> Context {
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

fn ofi_ctx(provider: &'static str) -> impl Fn(u32) -> Context {
    move |rank| {
        let cfg = Config {
            provider: Some(provider.into()),
            interface: Some("lo".into()),
            ..Default::default()
        };
        Context::new(&cfg, rank, 0).unwrap()
    }
}

#[tokio::test]
async fn rpc_suite_loopback() {
    suite(&loopback_ctx).await;
}

#[tokio::test]
async fn rpc_suite_ofi_tcp_rxm() {
    suite(&ofi_ctx("ofi+tcp;ofi_rxm")).await;
}

#[tokio::test]
async fn rpc_suite_ofi_shm() {
    suite(&ofi_ctx("ofi+shm")).await;
}

#[tokio::test]
async fn uri_lookup_reaches_other_tags() {
    let cfg = Config {
        provider: Some("ofi+tcp".into()),
        ..Default::default()
    };
    let s0 = Context::new(&cfg, 0, 0).unwrap();
    let s1 = Context::new(&cfg, 0, 1).unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    s1.register(test_protocol(counter.clone())).unwrap();
    s0.set_sibling_uris(vec![s0.uri().to_string(), s1.uri().to_string()]);
    let client = Context::new(&cfg, 5, 0).unwrap();
    let g = Group::new("g", [(0, s0.uri().to_string())]);
    assert_eq!(
        client
            .send(&Endpoint::new(&g, 0, 1), &Count { n: 42 })
            .await
            .unwrap(),
        42
    );
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    // Tag 0 does not serve the test protocol: DER_UNREG from the right context.
    let e = client
        .send(&Endpoint::new(&g, 0, 0), &Count { n: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Unreg);
}

#[tokio::test]
async fn provider_mismatch_in_uri_is_a_clear_error() {
    let tcp = Context::new(
        &Config {
            provider: Some("ofi+tcp".into()),
            ..Default::default()
        },
        0,
        0,
    )
    .unwrap();
    let shm = Context::new(
        &Config {
            provider: Some("ofi+shm".into()),
            ..Default::default()
        },
        1,
        0,
    )
    .unwrap();
    let g = Group::new("g", [(0, tcp.uri().to_string())]);
    let e = shm
        .send(&Endpoint::new(&g, 0, 0), &Count { n: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Inval);
    assert!(e.to_string().contains("D_PROVIDER"), "{e}");
}

#[test]
fn context_outside_a_runtime_is_a_clear_error() {
    let cfg = Config::default().resolve().unwrap();
    let e = Context::with_transport(Arc::new(LoopbackTransport::new(4096)), cfg, 0, 0).unwrap_err();
    assert_eq!(e.der(), Der::Inval);
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Boom {
    panic: bool,
}
impl Rpc for Boom {
    const OPCODE: u32 = opcode(0x21, 1, 0);
    type Reply = u32;
}

/// A loopback server serving `proto`, a client, and the server's endpoint (the server context must
/// stay alive: it is returned first).
fn loopback_serving(proto: Protocol) -> (Context, Context, Endpoint) {
    let server = loopback_ctx(0);
    server.register(proto).unwrap();
    let client = loopback_ctx(1);
    let g = Group::new("g", [(0, server.uri().to_string())]);
    let ep = Endpoint::new(&g, 0, 0);
    (server, client, ep)
}

#[tokio::test]
async fn panicking_handler_gets_der_misc_and_context_keeps_serving() {
    let (_server, client, ep) = loopback_serving(Protocol::new("boom", 0x21, 1).handler(
        |_rc: RpcCtx, req: Boom| async move {
            if req.panic {
                panic!("handler bug");
            }
            Ok(7u32)
        },
    ));
    let e = client
        .send_with(&ep, &Boom { panic: true }, Some(Duration::from_secs(20)))
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Misc, "{e}");
    // The server's progress loop survived the panic.
    assert_eq!(client.send(&ep, &Boom { panic: false }).await.unwrap(), 7);
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct NowOrLater {
    /// 0: reply at once, 1: reply after a 20 ms wait, 2: panic in the handler itself, 3: error.
    mode: u8,
}
impl Rpc for NowOrLater {
    const OPCODE: u32 = opcode(0x22, 1, 0);
    type Reply = u32;
}

/// `Protocol::handler_now`: immediate replies, deferred ones, errors, and a handler that panics
/// while answering on the progress loop (DER_MISC, and the context keeps serving).
#[tokio::test]
async fn immediate_handlers_reply_now_or_later_and_survive_panics() {
    let (_server, client, ep) = loopback_serving(Protocol::new("now", 0x22, 1).handler_now(
        |_rc: RpcCtx, req: NowOrLater| match req.mode {
            0 => Handled::Now(Ok(1)),
            1 => Handled::Later(Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(2)
            })),
            2 => panic!("handler bug"),
            _ => Handled::Now(Err(RpcError::new(Der::NoPerm, "mode 3 is refused"))),
        },
    ));
    assert_eq!(client.send(&ep, &NowOrLater { mode: 0 }).await.unwrap(), 1);
    assert_eq!(client.send(&ep, &NowOrLater { mode: 1 }).await.unwrap(), 2);
    let e = client
        .send_with(&ep, &NowOrLater { mode: 2 }, Some(Duration::from_secs(20)))
        .await
        .unwrap_err();
    assert_eq!(e.der(), Der::Misc, "{e}");
    let e = client.send(&ep, &NowOrLater { mode: 3 }).await.unwrap_err();
    assert_eq!(e.der(), Der::NoPerm, "{e}");
    assert!(e.to_string().contains("mode 3 is refused"), "{e}");
    assert_eq!(client.send(&ep, &NowOrLater { mode: 0 }).await.unwrap(), 1);
}

/// `D_QUOTA_RPCS`: with a quota of 2, three 300 ms RPCs to two endpoints cannot all be in flight
/// at once, so they take at least two rounds; each still succeeds.
#[tokio::test]
async fn context_quota_limits_rpcs_in_flight() {
    let cfg = Config {
        quota_rpcs: Some(2),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let mk = |rank: u32, cfg: &cart::config::Resolved| {
        Context::with_transport(
            Arc::new(LoopbackTransport::new(cfg.inline_limit + 1024)),
            cfg.clone(),
            rank,
            0,
        )
        .unwrap()
    };
    let s0 = mk(0, &cfg);
    let s1 = mk(1, &cfg);
    for s in [&s0, &s1] {
        s.register(test_protocol(Arc::new(AtomicU64::new(0))))
            .unwrap();
    }
    let client = mk(9, &cfg);
    let group = Group::new("q", [(0, s0.uri().to_string()), (1, s1.uri().to_string())]);
    let t0 = std::time::Instant::now();
    let calls = (0..3u32).map(|i| {
        let (c, ep) = (client.clone(), Endpoint::new(&group, i % 2, 0));
        async move { c.send(&ep, &Sleep { ms: 300 }).await }
    });
    for r in futures_join_all(calls).await {
        r.unwrap();
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(590),
        "3 RPCs of 300 ms under a quota of 2 finished in {took:?}: the quota did not hold"
    );
}

/// A message whose HLC is more than the epsilon (1 s) ahead of the local clock is refused: the
/// request gets DER_HLC_SYNC and the local clock does not jump.
#[tokio::test]
async fn request_from_a_clock_far_ahead_gets_der_hlc_sync() {
    use cart::transport::{Event, Transport};
    use cart::wire::{self, Header, Kind};
    let server = loopback_ctx(0);
    let raw = LoopbackTransport::new(64 << 10);
    let peer = raw
        .insert_addr(&cart::context::parse_uri(server.uri(), raw.provider_name()).unwrap())
        .unwrap();
    let ahead = daos_common::hlc::nsec_to_hlc(
        daos_common::hlc::hlc_to_nsec(cart::context::HLC.now()) + 60_000_000_000,
    );
    let hdr = Header {
        kind: Kind::Request,
        flags: 0,
        opcode: Sleep::OPCODE,
        rc: 0,
        rpc_id: 7,
        src_rank: 5,
        src_tag: 0,
        dst_rank: 0,
        dst_tag: 0,
        hlc: ahead,
    };
    server
        .register(test_protocol(Arc::new(AtomicU64::new(0))))
        .unwrap();
    let body = wire::encode_body("req", &Sleep { ms: 0 }, 64).unwrap();
    raw.send(peer, wire::encode(&hdr, raw.self_addr(), &body, None), 1)
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut reply = None;
    while reply.is_none() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no reply");
        raw.progress(16, &mut |ev| {
            if let Event::Recv(d) = ev {
                reply = Some(wire::decode(d).map(|m| m.hdr).unwrap());
            }
        })
        .unwrap();
        tokio::task::yield_now().await;
    }
    let r = reply.unwrap();
    assert_eq!(r.kind, Kind::Reply);
    assert_eq!(r.rpc_id, 7);
    assert_eq!(r.rc, Der::HlcSync.rc(), "reply rc {}", r.rc);
    assert!(
        cart::context::HLC.now() < ahead,
        "the local clock jumped to the skewed remote"
    );
}

/// Polls every future to completion concurrently (no extra dependency).
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Unserved;
impl Rpc for Unserved {
    const OPCODE: u32 = opcode(0x20, 1, 9);
    type Reply = ();
}

/// `Context::send_cb` (CaRT's `crt_req_send` with a completion callback): replies inline and
/// overflowed both ways, a callback that sends again (a chain), more RPCs than credits at once,
/// remote errors, timeouts, abort, and a panicking callback that does not stop the progress loop.
async fn callback_suite(make: &dyn Fn(u32) -> Context) {
    use tokio::sync::{mpsc, oneshot};
    let p = setup(make);
    let ep = Endpoint::new(&p.group, 0, 0);
    let c = &p.client;
    async fn wait<T>(rx: oneshot::Receiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("callback ran")
            .expect("callback sent")
    }

    // Inline and overflowed request and reply bodies, every byte checked.
    for &n in &[0usize, 8, 19 * 1024 + 1, 100_000] {
        let data = pattern(n, 5);
        let (tx, rx) = oneshot::channel();
        c.send_cb::<Echo, _, _>(
            &ep,
            &Echo {
                data: data.clone(),
                reply_len: n as u32,
            },
            None,
            move |r| {
                let _ = tx.send(r);
            },
        )
        .unwrap();
        let (sum, back) = wait(rx).await.unwrap();
        assert_eq!(sum, checksum(&data), "{n} bytes");
        assert_eq!(back, pattern(n, n as u64), "{n} bytes");
    }

    // A chain of 200 RPCs, each sent from the previous one's callback.
    fn chain(c: Context, ep: Endpoint, i: u64, tx: mpsc::UnboundedSender<Result<u64, CartError>>) {
        let (c2, ep2) = (c.clone(), ep.clone());
        c.send_cb::<Count, _, _>(&ep, &Count { n: i }, None, move |r| {
            let ok = matches!(r, Ok(n) if n == i);
            let _ = tx.send(r);
            if ok && i < 199 {
                chain(c2, ep2, i + 1, tx);
            }
        })
        .unwrap();
    }
    let before = p.counter.load(Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel();
    chain(c.clone(), ep.clone(), 0, tx);
    for i in 0..200u64 {
        let r = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap(), i);
    }
    assert_eq!(p.counter.load(Ordering::SeqCst) - before, 200);

    // 300 at once: more than the 32 credits, so most wait for one; every one completes once.
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..300u64 {
        let tx = tx.clone();
        c.send_cb::<Count, _, _>(&ep, &Count { n: i }, None, move |r| {
            let _ = tx.send(r.unwrap());
        })
        .unwrap();
    }
    drop(tx);
    let mut got = Vec::new();
    while let Some(n) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
    {
        got.push(n);
    }
    got.sort_unstable();
    assert_eq!(got, (0..300).collect::<Vec<_>>());

    // Remote error, timeout, abort: each reaches the callback with its DER code.
    let (tx, rx) = oneshot::channel();
    c.send_cb::<Unserved, _, _>(&ep, &Unserved, None, move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    assert_eq!(wait(rx).await.unwrap_err().der(), Der::Unreg);
    let (tx, rx) = oneshot::channel();
    let t0 = std::time::Instant::now();
    c.send_cb::<Sleep, _, _>(
        &ep,
        &Sleep { ms: 2000 },
        Some(Duration::from_millis(150)),
        move |r| {
            let _ = tx.send(r);
        },
    )
    .unwrap();
    let e = wait(rx).await.unwrap_err();
    assert!(matches!(e, CartError::Timeout { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_millis(1500));
    let (tx, rx) = oneshot::channel();
    c.send_cb::<Sleep, _, _>(&ep, &Sleep { ms: 2000 }, None, move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    // The endpoint is resolved and credits are free, so it is pending as soon as send_cb returns.
    assert_eq!(c.abort(&p.group, 0, None), 1);
    assert_eq!(wait(rx).await.unwrap_err().der(), Der::Canceled);

    // A panicking callback is contained; the context keeps working.
    c.send_cb::<Count, _, _>(&ep, &Count { n: 1 }, None, |_| panic!("callback bug"))
        .unwrap();
    let (tx, rx) = oneshot::channel();
    c.send_cb::<Count, _, _>(&ep, &Count { n: 7 }, None, move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    assert_eq!(wait(rx).await.unwrap(), 7);
    assert_eq!(c.send(&ep, &Count { n: 8 }).await.unwrap(), 8);

    // From a thread outside any runtime, to an endpoint not resolved yet (a tag-1 URI lookup
    // would need a task; tag 0 of a new group object goes through the same slow path).
    let g2 = Group::new("g", [(0, p.server.uri().to_string())]);
    let ep2 = Endpoint::new(&g2, 0, 0);
    let (tx, rx) = oneshot::channel();
    let c2 = c.clone();
    std::thread::spawn(move || {
        c2.send_cb::<Count, _, _>(&ep2, &Count { n: 9 }, None, move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(wait(rx).await.unwrap(), 9);
    drop(p.server);
}

#[tokio::test]
async fn completion_callbacks_loopback() {
    callback_suite(&loopback_ctx).await;
}

#[tokio::test]
async fn completion_callbacks_ofi_shm() {
    callback_suite(&ofi_ctx("ofi+shm")).await;
}

#[tokio::test]
async fn completion_callbacks_ofi_tcp_rxm() {
    callback_suite(&ofi_ctx("ofi+tcp;ofi_rxm")).await;
}

/// The self-test RPC as every server answers it: the reply's bytes, and a clear error for a
/// session that is not open, an IOV of the wrong size and an undecodable body.
async fn self_test_handler_suite(make: &dyn Fn(u32) -> Context) {
    use cart::selftest::{CloseSession, MsgSpec, MsgType, OpenSession, TestMsg};
    let p = setup(make);
    let ep = &Endpoint::new(&p.group, 0, 0);
    let c = &p.client;
    let spec = |ty, size| MsgSpec { ty, size };
    let id = c
        .send(
            ep,
            &OpenSession {
                send: spec(MsgType::Iov, 8),
                reply: spec(MsgType::Iov, 100),
                buf_count: 1,
            },
        )
        .await
        .unwrap();
    let msg = |session, iov: Vec<u8>| TestMsg {
        session,
        iov,
        bulk_send: None,
        bulk_reply: None,
    };
    let reply = c.send(ep, &msg(id, vec![7; 8])).await.unwrap();
    assert_eq!(reply, vec![0xA5; 100]);
    let e = c.send(ep, &msg(id, vec![7; 5])).await.unwrap_err();
    assert_eq!(e.der(), Der::Inval, "{e}");
    assert!(e.to_string().contains("IOV of 5 bytes"), "{e}");
    let e = c.send(ep, &msg(id + 1000, vec![7; 8])).await.unwrap_err();
    assert_eq!(e.der(), Der::Nonexist, "{e}");
    assert!(e.to_string().contains("is not open"), "{e}");
    // A body that is not a TestMsg (one byte).
    let e = c.send_as::<TestMsg, _>(ep, &7u8, None).await.unwrap_err();
    assert_eq!(e.der(), Der::Proto, "{e}");
    c.send(ep, &CloseSession { id }).await.unwrap();
    let e = c.send(ep, &msg(id, vec![7; 8])).await.unwrap_err();
    assert_eq!(e.der(), Der::Nonexist, "{e}");
}

#[tokio::test]
async fn self_test_handler_loopback() {
    self_test_handler_suite(&loopback_ctx).await;
}

#[tokio::test]
async fn self_test_handler_ofi_shm() {
    self_test_handler_suite(&ofi_ctx("ofi+shm")).await;
}

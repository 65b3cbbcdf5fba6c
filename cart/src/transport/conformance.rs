//! One conformance suite for every [`Transport`] (Mercury runs each unit test per NA plugin):
//! two endpoints, unexpected send/recv both ways, size cap, RMA get/put with offsets on a region
//! whose owner only progresses (RMA target progress), access checks, bad addresses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::loopback::LoopbackTransport;
use super::ofi::{OfiOptions, OfiTransport};
use super::*;

type Pair = (Arc<dyn Transport>, Arc<dyn Transport>);

#[derive(Default)]
struct Seen {
    msgs: Vec<Vec<u8>>,
    sends: Vec<(OpId, Result<(), TransportError>)>,
    rmas: Vec<(OpId, Result<(), TransportError>)>,
}

fn drive(t: &dyn Transport, seen: &mut Seen) {
    t.progress(16, &mut |ev| match ev {
        Event::Recv(d) => seen.msgs.push(d.to_vec()),
        Event::SendDone(op, r) => seen.sends.push((op, r)),
        Event::RmaDone(op, r) => seen.rmas.push((op, r)),
    })
    .expect("progress");
}

/// Progresses both ends until `done` holds (bounded: 10 s).
fn pump(
    a: &dyn Transport,
    sa: &mut Seen,
    b: &dyn Transport,
    sb: &mut Seen,
    done: impl Fn(&Seen, &Seen) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(sa, sb) {
        assert!(
            Instant::now() < deadline,
            "transport made no progress within 10 s"
        );
        drive(a, sa);
        drive(b, sb);
    }
}

fn suite(make: impl Fn() -> Pair) {
    let (a, b) = make();
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let pb = a.insert_addr(b.self_addr()).expect("insert b");
    assert_eq!(
        a.insert_addr(b.self_addr()).unwrap(),
        pb,
        "insert is idempotent"
    );
    let pa = b.insert_addr(a.self_addr()).expect("insert a");

    // Unexpected messages both ways, including empty and max-size.
    a.send(pb, b"hello".to_vec(), 7).unwrap();
    let max = a.max_msg_size();
    let big: Vec<u8> = (0..max).map(|i| (i * 31 % 251) as u8).collect();
    a.send(pb, big.clone(), 8).unwrap();
    b.send(pa, Vec::new(), 9).unwrap();
    pump(&*a, &mut sa, &*b, &mut sb, |sa, sb| {
        sb.msgs.len() == 2 && sa.msgs.len() == 1 && sa.sends.len() == 2 && sb.sends.len() == 1
    });
    assert_eq!(sb.msgs[0], b"hello");
    assert_eq!(sb.msgs[1], big);
    assert!(sa.msgs[0].is_empty());
    let mut ops: Vec<_> = sa.sends.iter().map(|(o, r)| (*o, r.is_ok())).collect();
    ops.sort();
    assert_eq!(ops, vec![(7, true), (8, true)]);

    // Size cap.
    let err = a.send(pb, vec![0; max + 1], 10).unwrap_err();
    assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");

    // RMA: b owns a RW region with a pattern; a gets a slice of it, then puts into it.
    let pattern: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(7) >> 3) as u8)
        .collect();
    let remote_region = b
        .register(DmaBuf::from_vec(pattern.clone()), Access::ReadWrite)
        .unwrap();
    let rdesc = remote_region.remote(b.self_addr());
    let local = a
        .register(DmaBuf::zeroed(1 << 20), Access::ReadWrite)
        .unwrap();
    a.rma(RmaDir::Get, &local, 100, pb, &rdesc, 4096, 500_000, 1)
        .unwrap();
    pump(&*a, &mut sa, &*b, &mut sb, |sa, _| sa.rmas.len() == 1);
    assert!(sa.rmas[0].1.is_ok(), "{:?}", sa.rmas[0]);
    let got = local.buf.to_vec();
    assert_eq!(&got[100..100 + 500_000], &pattern[4096..4096 + 500_000]);
    assert!(got[..100].iter().all(|&x| x == 0));

    local.buf.write_at(0, &[0xAB; 1000]).unwrap();
    a.rma(RmaDir::Put, &local, 0, pb, &rdesc, 10, 1000, 2)
        .unwrap();
    pump(&*a, &mut sa, &*b, &mut sb, |sa, _| sa.rmas.len() == 2);
    assert!(sa.rmas[1].1.is_ok(), "{:?}", sa.rmas[1]);
    let after = remote_region.buf.to_vec();
    assert!(after[10..1010].iter().all(|&x| x == 0xAB));
    assert_eq!(&after[..10], &pattern[..10]);
    assert_eq!(&after[1010..], &pattern[1010..]);

    // Access checks are local and immediate.
    let ro = b.register(DmaBuf::zeroed(64), Access::ReadOnly).unwrap();
    let rod = ro.remote(b.self_addr());
    let e = a
        .rma(RmaDir::Put, &local, 0, pb, &rod, 0, 8, 3)
        .unwrap_err();
    assert!(matches!(e, TransportError::BadAccess(_)), "{e}");
    let e = a
        .rma(RmaDir::Get, &local, 0, pb, &rod, 60, 8, 4)
        .unwrap_err();
    assert!(matches!(e, TransportError::BadAccess(_)), "{e}");
    let e = a
        .rma(RmaDir::Get, &local, (1 << 20) - 4, pb, &rod, 0, 8, 5)
        .unwrap_err();
    assert!(matches!(e, TransportError::BadAccess(_)), "{e}");

    // Garbage address.
    assert!(a.insert_addr(&[]).is_err());
}

fn ofi_pair(p: Provider) -> Option<Pair> {
    ofi_pair_mode(p, false)
}

fn ofi_pair_mode(p: Provider, busy_poll: bool) -> Option<Pair> {
    let opts = OfiOptions {
        provider: p,
        node: p.caps().source_node.then(|| "127.0.0.1".to_string()),
        domain: None,
        port: None,
        recv_count: 16,
        recv_size: 20 * 1024,
        busy_poll,
    };
    let a = OfiTransport::open(&opts)
        .map_err(|e| eprintln!("{e}"))
        .ok()?;
    let b = OfiTransport::open(&opts).ok()?;
    Some((Arc::new(a), Arc::new(b)))
}

#[test]
fn conformance_loopback() {
    suite(|| {
        (
            Arc::new(LoopbackTransport::new(20 * 1024)),
            Arc::new(LoopbackTransport::new(20 * 1024)),
        )
    });
}

#[test]
fn conformance_ofi_tcp_rxm() {
    suite(|| ofi_pair(Provider::TcpRxm).expect("tcp;ofi_rxm must open on 127.0.0.1"));
}

/// Busy-poll mode (`CART_PROGRESS_MODE=busy`): the same behaviour over a CQ without a wait object.
#[test]
fn conformance_ofi_tcp_rxm_busy_poll() {
    suite(|| ofi_pair_mode(Provider::TcpRxm, true).expect("tcp;ofi_rxm must open on 127.0.0.1"));
}

#[test]
fn conformance_ofi_shm() {
    suite(|| ofi_pair(Provider::Shm).expect("shm must open"));
}

#[test]
fn tcp_has_a_wait_fd_and_shm_does_not() {
    let (a, _) = ofi_pair(Provider::TcpRxm).unwrap();
    assert!(a.wait_fd().is_some());
    let (s, _) = ofi_pair(Provider::Shm).unwrap();
    assert!(s.wait_fd().is_none());
    let (b, _) = ofi_pair_mode(Provider::TcpRxm, true).unwrap();
    assert!(
        b.wait_fd().is_none(),
        "busy-poll mode opens the CQ without a wait object"
    );
}

/// A tcp endpoint that went to sleep (`try_wait` said yes) is woken through its wait fd by an
/// arriving message: first on a connection that does not exist yet (the listening socket must be
/// watched), then on the established one, several sleep/wake cycles in a row.
#[tokio::test(flavor = "current_thread")]
async fn tcp_sleeping_endpoint_wakes_when_a_message_arrives() {
    let (a, b) = ofi_pair(Provider::TcpRxm).expect("tcp;ofi_rxm must open on 127.0.0.1");
    let afd = super::ofi::async_wait_fd(&a)
        .expect("tcp has a wait fd")
        .expect("register the wait fd with tokio");
    let pa = b.insert_addr(a.self_addr()).unwrap();
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    for round in 0..4u8 {
        // Drain `a` until it agrees to sleep and its wait fd stays quiet (a wait fd that is
        // readable while nothing arrives would make an idle context spin on a core).
        let mut quiet = false;
        for _ in 0..5 {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                drive(&*a, &mut sa);
                if a.try_wait() {
                    break;
                }
                assert!(Instant::now() < deadline, "endpoint never agreed to sleep");
            }
            match tokio::time::timeout(Duration::from_millis(20), afd.readable()).await {
                Err(_) => {
                    quiet = true;
                    break;
                }
                Ok(g) => g.expect("wait fd readiness").clear_ready(),
            }
        }
        assert!(
            quiet,
            "round {round}: the wait fd is readable while nothing arrives"
        );
        b.send(pa, vec![round; 8], u64::from(round)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            drive(&*b, &mut sb);
            if let Ok(g) = tokio::time::timeout(Duration::from_millis(1), afd.readable()).await {
                g.expect("wait fd readiness").clear_ready();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the sleeping endpoint's wait fd never became readable"
            );
        }
        let want = vec![round; 8];
        pump(&*a, &mut sa, &*b, &mut sb, |sa, _| sa.msgs.contains(&want));
    }
}

//! Ping-pong of 8 B messages over the bare `OfiTransport` (no cart context, no RPC layer), to split
//! a self_test round trip into the transport's share and the RPC layer's.
//!
//! `D_PROVIDER=ofi+shm taskset -c 0 transport_pingpong server ADDR_FILE &`
//! `D_PROVIDER=ofi+shm taskset -c 1 transport_pingpong client ADDR_FILE 200000` prints
//! `{"rtt_8b_us": …}` (wall time / round trips, as fi_pingpong and fabric.sh count). `BUSY=1` opens
//! the CQ without wait object. The server runs until killed.
use cart::transport::ofi::{OfiOptions, OfiTransport};
use cart::transport::{Event, Provider, Transport};
use std::time::Instant;

fn open() -> OfiTransport {
    let prov = std::env::var("D_PROVIDER").unwrap_or_else(|_| "ofi+tcp;ofi_rxm".into());
    let provider = Provider::parse(&prov).expect("provider");
    let tcp = provider.caps().uses_port;
    OfiTransport::open(&OfiOptions {
        provider,
        node: tcp.then(|| "127.0.0.1".to_string()),
        domain: tcp.then(|| "lo".to_string()),
        port: None,
        recv_count: 64,
        recv_size: 20 * 1024,
        busy_poll: std::env::var("BUSY").is_ok(),
    })
    .expect("open")
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let t = open();
    if a[1] == "server" {
        std::fs::write(&a[2], hex(t.self_addr())).unwrap();
        let mut peer = None;
        loop {
            let mut got: Vec<Vec<u8>> = Vec::new();
            t.progress(16, &mut |ev| {
                if let Event::Recv(d) = ev {
                    got.push(d.to_vec())
                }
            })
            .unwrap();
            for d in got {
                if d.len() != 8 {
                    peer = Some(t.insert_addr(&d).unwrap());
                    continue;
                }
                if let Some(p) = peer {
                    t.send(p, d, 0).unwrap();
                }
            }
        }
    } else {
        let raw = unhex(&std::fs::read_to_string(&a[2]).unwrap());
        let n: usize = a[3].parse().unwrap();
        let p = t.insert_addr(&raw).unwrap();
        t.send(p, t.self_addr().to_vec(), 0).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            t.send(p, vec![7u8; 8], 0).unwrap();
            let mut done = false;
            while !done {
                t.progress(16, &mut |ev| {
                    if let Event::Recv(_) = ev {
                        done = true
                    }
                })
                .unwrap();
            }
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{{\"rtt_8b_us\": {us:.3}}}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

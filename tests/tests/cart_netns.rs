//! cart over a real (virtual) NIC instead of loopback: a `cart_server` inside a network namespace,
//! reached from the host over a veth pair, both ends chosen with `D_INTERFACE` as in DAOS. Checks
//! that the server binds the interface's address, every byte of inline and bulk RPCs arrives, and
//! an unknown interface is a clear error. Needs root (`ip netns`); the namespace and the pair are
//! removed afterwards, also when the test fails.

use std::process::Command;
use std::time::Duration;

use cart::selftest::Echo;
use cart::transport::{Access, DmaBuf};
use cart::{Config, Context, Endpoint, Group};
use tests::{bin_path, ChildGuard, NetNs};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9).wrapping_add(seed) >> 5) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_over_a_veth_pair_into_a_namespace() {
    if !is_root() {
        eprintln!("SKIPPED: needs root for `ip netns` (CI runs as root)");
        return;
    }
    let net = match NetNs::create('a') {
        Ok(n) => n,
        // Only where the kernel refuses namespaces to this process (e.g. a restricted container);
        // on the CI machine and a normal root shell this runs.
        Err(e) if e.contains("Operation not permitted") || e.contains("Invalid argument") => {
            eprintln!("SKIPPED: network namespaces are not available here: {e}");
            return;
        }
        Err(e) => panic!("create a network namespace and a veth pair: {e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = net.command(&bin_path("cart_server"));
    cmd.args(["--group-name", "ns", "--rank", "0", "--path"])
        .arg(dir.path())
        .env("D_PROVIDER", "ofi+tcp;ofi_rxm")
        .env("D_INTERFACE", &net.ns_if)
        .env_remove("D_PORT");
    let mut server = ChildGuard::spawn("cart_server (netns)", cmd, &dir.path().join("srv.log"))
        .expect("spawn cart_server in the namespace");
    server
        .wait_for_line("cart_server ready", Duration::from_secs(30))
        .expect("server ready");
    let group = Group::attach(dir.path(), "ns").unwrap();
    // The published URI is a sockaddr_in (family 2, port, address) on the namespace's address,
    // not loopback: D_INTERFACE chose the NIC.
    let uri = group.uri(0).unwrap().to_string();
    let raw = cart::context::parse_uri(&uri, "ofi+tcp;ofi_rxm").unwrap();
    assert_eq!(
        &raw[4..8],
        &net.ns_ip,
        "server bound {uri}, not {:?}",
        net.ns_ip
    );

    let ctx = Context::new(
        &Config {
            provider: Some("ofi+tcp;ofi_rxm".into()),
            interface: Some(net.host_if.clone()),
            ..Default::default()
        },
        1000,
        0,
    )
    .expect("client context on the host end of the pair");
    let me = cart::context::parse_uri(ctx.uri(), "ofi+tcp;ofi_rxm").unwrap();
    assert_eq!(&me[4..8], &net.host_ip, "client bound {}", ctx.uri());
    let ep = Endpoint::new(&group, 0, 0);
    for n in [0usize, 8, 4096, 19 * 1024 + 1, 1 << 20] {
        let data = pattern(n, n as u64);
        let back = ctx
            .send(
                &ep,
                &Echo {
                    data: data.clone(),
                    bulk: None,
                    put_back: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("inline echo of {n} B over the veth pair: {e}"));
        assert!(back == data, "inline echo of {n} B corrupted");
        let src = ctx
            .bulk_create(vec![DmaBuf::from_vec(data.clone())], Access::ReadOnly)
            .unwrap();
        let dst = ctx
            .bulk_create(vec![DmaBuf::zeroed(n)], Access::ReadWrite)
            .unwrap();
        ctx.send(
            &ep,
            &Echo {
                data: Vec::new(),
                bulk: Some(src.handle()),
                put_back: Some(dst.handle()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("bulk echo of {n} B over the veth pair: {e}"));
        assert!(dst.to_vec() == data, "bulk GET+PUT of {n} B corrupted");
    }
    drop(ctx);
    server.stop();
}

#[tokio::test]
async fn unknown_interface_is_a_clear_error() {
    let e = Context::new(
        &Config {
            provider: Some("ofi+tcp;ofi_rxm".into()),
            interface: Some("nosuchnic0".into()),
            ..Default::default()
        },
        0,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("nosuchnic0"),
        "error does not name the interface: {e}"
    );
}

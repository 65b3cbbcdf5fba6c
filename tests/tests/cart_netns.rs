//! cart over a real (virtual) NIC instead of loopback: a `cart_server` inside a network namespace,
//! reached from the host over a veth pair, both ends chosen with `D_INTERFACE` as in DAOS. Checks
//! that the server binds the interface's address, every byte of inline and bulk RPCs arrives, and
//! an unknown interface is a clear error. Needs root (`ip netns`); the namespace and the pair are
//! removed afterwards, also when the test fails.

use std::process::Command;
use std::time::Duration;

use cart::{Config, Context, Endpoint, Group};
use tests::{bin_path, ChildGuard, NetNs};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
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
    // Every byte of 0 B-1 MiB, inline and by bulk GET + PUT, over the veth pair.
    tests::echo_sizes(&ctx, &ep, &[0, 8, 4096, 19 * 1024 + 1, 1 << 20]).await;
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

//! Shared harness for the multi-process tests: finding the workspace binaries, starting children
//! that are always reaped (SIGTERM, then SIGKILL) when the guard drops, waiting for a ready line
//! instead of sleeping, and dumping a child's log when a test fails.
//!
//! Binaries of other packages (`cart_server`, `self_test`, …) are found next to the test executable's
//! `target/<profile>/` directory; `scripts/run_tests.sh` builds them first (`cargo build --workspace --bins`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>` of the running test executable.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// Path of a workspace binary, e.g. `bin_path("cart_server")`. Panics with the fix when it is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first (scripts/run_tests.sh does)",
        p.display()
    );
    p
}

/// A child process that is terminated and reaped when dropped. Its stdout+stderr go to `log`.
pub struct ChildGuard {
    child: Option<Child>,
    log: PathBuf,
    name: String,
}

impl ChildGuard {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<ChildGuard> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null());
        let child = cmd.spawn()?;
        Ok(ChildGuard {
            child: Some(child),
            log: log.to_path_buf(),
            name: name.to_string(),
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the child has written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a line of the log contains `needle`; returns that line. Fails (with the log) on
    /// timeout or if the child exits first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut f = File::open(&self.log).map_err(|e| e.to_string())?;
        let mut pos = 0u64;
        let mut pending = String::new();
        loop {
            f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
            let mut chunk = String::new();
            let n = f.read_to_string(&mut chunk).map_err(|e| e.to_string())?;
            pos += n as u64;
            pending.push_str(&chunk);
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                if line.contains(needle) {
                    return Ok(line.trim_end().to_string());
                }
            }
            if let Some(st) = self.try_wait() {
                return Err(format!(
                    "{} exited ({st}) before printing {needle:?}; log:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not print {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Non-blocking exit check.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends a signal (e.g. `libc::SIGKILL`).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// Waits for the child to exit, up to `timeout`; SIGKILLs it after that. Returns its status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                if let Some(c) = self.child.as_mut() {
                    let _ = c.kill();
                    return c.wait().ok();
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; reaps the child.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.try_wait().is_none() {
            self.signal(libc::SIGTERM);
        }
        let st = self.wait_timeout(Duration::from_secs(5));
        self.child = None;
        st
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!("---- log of {} ({}) ----", self.name, self.log.display());
            if let Ok(f) = File::open(&self.log) {
                for line in BufReader::new(f).lines().map_while(Result::ok).take(400) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released; tests give each server its own).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A network namespace joined to the host by a veth pair, with one address on each end (in
/// 198.19.0.0/16, a /30 per test process). The namespace is held by a `unshare --net sleep`
/// child (no `ip netns add`, so nothing is mounted under /run/netns); dropping the guard kills
/// it, which destroys the namespace and with it the veth pair. Needs root, `ip` (iproute2),
/// `unshare` and `nsenter` (util-linux).
pub struct NetNs {
    holder: Option<Child>,
    /// Path of the namespace (`/proc/<holder>/ns/net`).
    pub ns: String,
    /// The host end of the veth pair.
    pub host_if: String,
    /// The end inside the namespace.
    pub ns_if: String,
    /// Address of the host end.
    pub host_ip: [u8; 4],
    /// Address of the namespace end.
    pub ns_ip: [u8; 4],
}

fn run_ip(mut cmd: Command, args: &[&str]) -> Result<(), String> {
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace and the pair; `tag` (a short letter) keeps tests of one process apart.
    pub fn create(tag: char) -> Result<NetNs, String> {
        let pid = std::process::id();
        // One /30 per (process, tag): 4096 processes x 4 tags x 4 addresses = all of 198.19/16.
        let idx = (pid % 4096) * 4 + (tag as u32 % 4);
        let net = 0xC613_0000u32 + idx * 4;
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `unshare`: {e}"))?;
        let hpid = holder.id();
        let mut n = NetNs {
            holder: Some(holder),
            ns: format!("/proc/{hpid}/ns/net"),
            host_if: format!("dr{tag}h{}", pid % 100000),
            ns_if: format!("dr{tag}n{}", pid % 100000),
            host_ip: (net + 1).to_be_bytes(),
            ns_ip: (net + 2).to_be_bytes(),
        };
        // From here on Drop kills the holder (and so the namespace and the pair).
        let ours = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = n.holder.as_mut().and_then(|h| h.try_wait().ok().flatten()) {
                let mut err = String::new();
                if let Some(mut e) = n.holder.as_mut().and_then(|h| h.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("`unshare --net` exited ({st}): {}", err.trim()));
            }
            match std::fs::read_link(&n.ns) {
                Ok(l) if l != ours => break,
                _ if Instant::now() > deadline => {
                    return Err("the namespace holder never entered a new namespace".into())
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let fmt = |a: [u8; 4]| format!("{}.{}.{}.{}/30", a[0], a[1], a[2], a[3]);
        let host = |args: &[&str]| run_ip(Command::new("ip"), args);
        host(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &n.ns_if,
        ])?;
        host(&["link", "set", &n.ns_if, "netns", &hpid.to_string()])?;
        host(&["addr", "add", &fmt(n.host_ip), "dev", &n.host_if])?;
        host(&["link", "set", &n.host_if, "up"])?;
        for args in [
            &["addr", "add", &fmt(n.ns_ip), "dev", &n.ns_if][..],
            &["link", "set", &n.ns_if, "up"],
            &["link", "set", "lo", "up"],
        ] {
            run_ip(n.command(Path::new("ip")), args)?;
        }
        Ok(n)
    }

    /// A command that runs `program` inside the namespace (`nsenter --net` execs it, so the
    /// child's pid is the program's own).
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.ns)).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The host end goes first (its peer lives in the namespace); then the holder, whose exit
        // frees the namespace once no process is left in it.
        let _ = run_ip(Command::new("ip"), &["link", "del", &self.host_if]);
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

/// Deterministic test bytes: `len` of them, different for each `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9).wrapping_add(seed) >> 5) as u8)
        .collect()
}

/// Echoes every size to `ep` through a cart server's self-test `Echo` handler, inline (which
/// overflows to bulk above the inline limit) and by explicit bulk GET + PUT, checking every byte.
pub async fn echo_sizes(ctx: &cart::Context, ep: &cart::Endpoint, sizes: &[usize]) {
    use cart::selftest::Echo;
    use cart::transport::{Access, DmaBuf};
    for &n in sizes {
        let data = pattern(n, n as u64 + ep.rank as u64);
        let back = ctx
            .send(
                ep,
                &Echo {
                    data: data.clone(),
                    bulk: None,
                    put_back: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("inline echo of {n} B to {}:{}: {e}", ep.rank, ep.tag));
        assert!(
            back == data,
            "inline echo of {n} bytes to {}:{} corrupted",
            ep.rank,
            ep.tag
        );

        let src = ctx
            .bulk_create(vec![DmaBuf::from_vec(data.clone())], Access::ReadOnly)
            .unwrap();
        let dst = ctx
            .bulk_create(vec![DmaBuf::zeroed(n)], Access::ReadWrite)
            .unwrap();
        ctx.send(
            ep,
            &Echo {
                data: Vec::new(),
                bulk: Some(src.handle()),
                put_back: Some(dst.handle()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("bulk echo of {n} B to {}:{}: {e}", ep.rank, ep.tag));
        assert!(
            dst.to_vec() == data,
            "bulk GET+PUT of {n} bytes via {}:{} corrupted",
            ep.rank,
            ep.tag
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_guard_reaps_and_finds_ready_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo starting; echo READY 42; sleep 30");
        let mut g = ChildGuard::spawn("sh", cmd, &log).unwrap();
        let line = g.wait_for_line("READY", Duration::from_secs(10)).unwrap();
        assert_eq!(line, "READY 42");
        let pid = g.pid();
        drop(g);
        // The process is gone (reaped): kill -0 fails.
        let alive = Command::new("kill")
            .arg("-0")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "child {pid} still alive after guard drop");
    }

    #[test]
    fn wait_for_line_reports_early_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo boom; exit 3");
        let mut g = ChildGuard::spawn("sh", cmd, &log).unwrap();
        let err = g
            .wait_for_line("READY", Duration::from_secs(10))
            .unwrap_err();
        assert!(err.contains("exited") && err.contains("boom"), "{err}");
    }
}

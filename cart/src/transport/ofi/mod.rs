//! The libfabric transport: the ONE module of cart with `unsafe` (every block has a `// SAFETY:` note).
//!
//! One [`OfiTransport`] = fabric + domain + AV (FI_AV_TABLE) + one CQ + one FI_EP_RDM endpoint, i.e.
//! one cart context. Receives are pre-posted (`recv_count` buffers of `recv_size` bytes) and re-posted
//! right after their completion is reported. Sends and RMA that hit `-FI_EAGAIN` go to a backlog that
//! the next [`Transport::progress`] call retries, so callers never see EAGAIN.
//!
//! mr_mode: we offer FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT (all honoured:
//! remote addresses are virtual or offsets, keys come from the provider or from our counter, MRs
//! are bound to the endpoint when asked) and follow what the provider returns (tcp;ofi_rxm returns
//! none of them here, shm returns FI_MR_VIRT_ADDR). FI_MR_LOCAL is not offered: message buffers are
//! plain heap memory.

mod buf;
mod ops;

pub use buf::DmaBuf;

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;
use std::ffi::{c_void, CStr, CString};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cart_ofi_sys as sys;

use super::{Event, MemRegion, OpId, PeerId, Provider, RmaDir, Transport, TransportError};

/// How to open an endpoint.
#[derive(Debug, Clone)]
pub struct OfiOptions {
    /// Which provider.
    pub provider: Provider,
    /// Node address to bind (tcp: "127.0.0.1" for `lo`); None lets the provider choose.
    pub node: Option<String>,
    /// libfabric domain name (tcp: the interface name, e.g. "lo"); None lets the provider choose.
    pub domain: Option<String>,
    /// Port to bind (None = ephemeral).
    pub port: Option<u16>,
    /// Number of pre-posted receive buffers.
    pub recv_count: usize,
    /// Size of each receive buffer = largest unexpected message.
    pub recv_size: usize,
    /// Busy-poll mode (Mercury's `NA_NO_BLOCK`): open the CQ without a wait object even where the
    /// provider has one. Over tcp;ofi_rxm 1.17 a CQ with `FI_WAIT_FD` costs ~1 µs per round trip
    /// even while the loop only polls (C ping-pong, same run: 7.05-7.43 µs without, 8.53-8.57 µs
    /// with); the price is that an idle context polls with back-off instead of sleeping on a fd.
    pub busy_poll: bool,
}

const KIND_RECV: u8 = 1;
const KIND_SEND: u8 = 2;
const KIND_RMA: u8 = 3;

/// Every libfabric operation context starts with this (FI_CONTEXT2 space, then our kind byte).
#[repr(C)]
struct OpHeader {
    ctx: sys::fi_context2,
    kind: u8,
}

#[repr(C)]
struct RecvSlot {
    hdr: OpHeader,
    buf: Box<[u8]>,
}

#[repr(C)]
struct OpCtx {
    hdr: OpHeader,
    op: OpId,
    peer: PeerId,
    /// Keeps the message (send) alive until completion.
    msg: Vec<u8>,
    /// Keeps the local region (RMA) alive until completion.
    region: Option<Arc<MemRegion>>,
    post: Post,
    /// When the provider first refused the post with `-FI_EAGAIN` (it then waits in the backlog).
    deferred: Option<std::time::Instant>,
}

/// A post refused with `-FI_EAGAIN` for this long fails as unreachable: `tcp;ofi_rxm` answers
/// EAGAIN forever (re-connecting on every attempt) to a send to a killed peer whose port refuses
/// connections, so without a limit such a send, and a liveness probe, would never complete.
const BACKLOG_GIVE_UP: std::time::Duration = std::time::Duration::from_millis(1000);

#[derive(Clone, Copy)]
enum Post {
    Send,
    Rma {
        dir: RmaDir,
        local: *mut u8,
        len: usize,
        desc: *mut c_void,
        addr: u64,
        key: u64,
    },
}

/// A registered memory region's libfabric half; closes the fid_mr on drop.
struct Mr {
    mr: *mut sys::fid_mr,
    desc: *mut c_void,
    _owner: Arc<Inner>,
}

// SAFETY: a fid_mr is usable from any thread on an FI_THREAD_SAFE domain; desc is an opaque token.
unsafe impl Send for Mr {}
// SAFETY: as above; Mr is never mutated after creation.
unsafe impl Sync for Mr {}

impl Drop for Mr {
    fn drop(&mut self) {
        // SAFETY: mr was returned by fi_mr_reg and is closed exactly once; the domain outlives it
        // because we hold an Arc to Inner.
        unsafe { sys::cart_fi_close(&mut (*self.mr).fid) };
    }
}

struct Inner {
    info: *mut sys::fi_info,
    fabric: *mut sys::fid_fabric,
    domain: *mut sys::fid_domain,
    av: *mut sys::fid_av,
    cq: *mut sys::fid_cq,
    ep: *mut sys::fid_ep,
    slots: Vec<*mut RecvSlot>,
}

// SAFETY: the domain is opened FI_THREAD_SAFE, so all fids may be used from any thread; the raw
// pointers are only closed in Drop, which runs once with exclusive access.
unsafe impl Send for Inner {}
// SAFETY: see Send.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: each fid was opened by us and is closed once, endpoint first (it references the
        // CQ and AV), then CQ, AV, domain, fabric; receive slots are freed only after the endpoint
        // that referenced them is closed.
        unsafe {
            if !self.ep.is_null() {
                sys::cart_fi_close(&mut (*self.ep).fid);
            }
            if !self.cq.is_null() {
                sys::cart_fi_close(&mut (*self.cq).fid);
            }
            if !self.av.is_null() {
                sys::cart_fi_close(&mut (*self.av).fid);
            }
            if !self.domain.is_null() {
                sys::cart_fi_close(&mut (*self.domain).fid);
            }
            if !self.fabric.is_null() {
                sys::cart_fi_close(&mut (*self.fabric).fid);
            }
            for s in self.slots.drain(..) {
                drop(Box::from_raw(s));
            }
            if !self.info.is_null() {
                sys::fi_freeinfo(self.info);
            }
        }
    }
}

/// Provider quirk: libfabric 1.17 links libpsm_infinipath, whose library constructor (run before
/// `main`) installs SIGINT/SIGTERM handlers that `exit(1)`; a handler installed later (tokio's
/// signal-hook) chains to it, so a server would exit before cleaning up. Servers call this once
/// before installing their own handlers: it resets both signals to `SIG_DFL`.
pub fn restore_default_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing SIG_DFL has no memory-safety preconditions.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// The IPv4 address of network interface `name` (what `D_INTERFACE` names), from getifaddrs(3).
/// Errors name the interface and list the ones that exist, or say it has no IPv4 address.
pub fn interface_ipv4(name: &str) -> Result<std::net::Ipv4Addr, String> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(format!(
            "getifaddrs failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut found_name = false;
    let mut addr = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list returned by getifaddrs, valid until freeifaddrs;
        // ifa_name is a NUL-terminated string; ifa_addr is NULL or points to a sockaddr whose
        // family says how to read it (AF_INET: sockaddr_in).
        unsafe {
            let ifa = &*cur;
            let n = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            if n == name {
                found_name = true;
                if addr.is_none()
                    && !ifa.ifa_addr.is_null()
                    && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    addr = Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                }
            }
            if !names.contains(&n) {
                names.push(n);
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    match (found_name, addr) {
        (_, Some(a)) => Ok(a),
        (true, None) => Err(format!("interface {name:?} has no IPv4 address")),
        (false, None) => Err(format!(
            "interface {name:?} does not exist (interfaces here: {})",
            names.join(", ")
        )),
    }
}

/// A libfabric endpoint with its CQ and AV.
pub struct OfiTransport {
    inner: Arc<Inner>,
    provider: Provider,
    prov_name: String,
    mr_mode: u32,
    self_addr: Vec<u8>,
    wait_fd: Option<RawFd>,
    recv_size: usize,
    peers: Mutex<HashMap<Vec<u8>, PeerId>>,
    backlog: Mutex<VecDeque<Box<OpCtx>>>,
    backlog_len: AtomicUsize,
    repost: Mutex<Vec<*mut RecvSlot>>,
    repost_len: AtomicUsize,
    next_key: AtomicU64,
}

// SAFETY: Inner is Send+Sync (FI_THREAD_SAFE); the raw slot pointers in `repost` and the boxed
// contexts in `backlog` are owned data moved between threads under a Mutex.
unsafe impl Send for OfiTransport {}
// SAFETY: see Send; all interior mutability is behind Mutex or atomics.
unsafe impl Sync for OfiTransport {}

fn strerror(rc: i64) -> String {
    // SAFETY: fi_strerror returns a static NUL-terminated string for any input.
    unsafe {
        let p = sys::fi_strerror(rc.unsigned_abs() as i32);
        if p.is_null() {
            format!("error {rc}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn check(call: &'static str, rc: i64) -> Result<i64, TransportError> {
    if rc < 0 {
        Err(TransportError::Fabric {
            call,
            rc,
            msg: strerror(rc),
        })
    } else {
        Ok(rc)
    }
}

const EAGAIN: i64 = -(sys::FI_EAGAIN as i64);

impl OfiTransport {
    /// Opens fabric, domain, CQ, AV and endpoint, and pre-posts the receives.
    pub fn open(opts: &OfiOptions) -> Result<OfiTransport, TransportError> {
        let caps = opts.provider.caps();
        let no_provider = |reason: String| TransportError::NoProvider {
            provider: caps.fi_name.to_string(),
            reason,
        };
        let node = opts.node.as_deref().map(CString::new).transpose();
        let node = node.map_err(|_| no_provider("node contains NUL".into()))?;
        let service = opts
            .port
            .map(|p| CString::new(p.to_string()))
            .transpose()
            .map_err(|_| no_provider("bad port".into()))?;
        let prov = CString::new(caps.fi_name).map_err(|_| no_provider("bad name".into()))?;
        let dom = opts
            .domain
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| no_provider("domain contains NUL".into()))?;

        let mut inner = Inner {
            info: ptr::null_mut(),
            fabric: ptr::null_mut(),
            domain: ptr::null_mut(),
            av: ptr::null_mut(),
            cq: ptr::null_mut(),
            ep: ptr::null_mut(),
            slots: Vec::new(),
        };
        let offered =
            sys::FI_MR_VIRT_ADDR | sys::FI_MR_ALLOCATED | sys::FI_MR_PROV_KEY | sys::FI_MR_ENDPOINT;
        // SAFETY: fi_allocinfo returns a zeroed fi_info with all attr structs allocated (or NULL,
        // checked). Strings we put in it are strdup'ed because fi_freeinfo frees them.
        let hints = unsafe {
            let h = sys::cart_fi_allocinfo();
            if h.is_null() {
                return Err(no_provider("fi_allocinfo returned NULL".into()));
            }
            (*h).caps = (sys::FI_MSG
                | sys::FI_RMA
                | sys::FI_READ
                | sys::FI_WRITE
                | sys::FI_REMOTE_READ
                | sys::FI_REMOTE_WRITE
                | sys::FI_SEND
                | sys::FI_RECV) as u64;
            (*h).mode = sys::FI_CONTEXT | sys::FI_CONTEXT2;
            (*(*h).ep_attr).type_ = sys::FI_EP_RDM;
            (*(*h).domain_attr).mr_mode = offered as i32;
            (*(*h).domain_attr).av_type = sys::FI_AV_TABLE;
            (*(*h).domain_attr).threading = sys::FI_THREAD_SAFE;
            if let Some(d) = &dom {
                (*(*h).domain_attr).name = libc::strdup(d.as_ptr());
            }
            (*(*h).fabric_attr).prov_name = libc::strdup(prov.as_ptr());
            h
        };
        let flags = if node.is_some() || service.is_some() {
            sys::FI_SOURCE
        } else {
            0
        };
        // SAFETY: hints is valid; node/service are NUL-terminated or NULL; info is an out pointer.
        let rc = unsafe {
            let rc = sys::fi_getinfo(
                sys::CART_FI_VERSION,
                node.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                service.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                flags,
                hints,
                &mut inner.info,
            );
            sys::fi_freeinfo(hints);
            rc
        };
        if rc != 0 || inner.info.is_null() {
            return Err(no_provider(format!(
                "fi_getinfo: {} (node {:?}, port {:?}, domain {:?})",
                strerror(rc as i64),
                opts.node,
                opts.port,
                opts.domain
            )));
        }
        // SAFETY: info is a valid list returned by fi_getinfo; we use its first entry.
        let (mr_mode, prov_name) = unsafe {
            let info = inner.info;
            let pn = (*(*info).fabric_attr).prov_name;
            let name = if pn.is_null() {
                caps.fi_name.to_string()
            } else {
                CStr::from_ptr(pn).to_string_lossy().into_owned()
            };
            ((*(*info).domain_attr).mr_mode as u32, name)
        };
        // SAFETY: every out pointer is a field of `inner`, which closes whatever was opened if we
        // return early (Drop). The attr structs live on the stack for the duration of each call.
        unsafe {
            check(
                "fi_fabric",
                sys::fi_fabric(
                    (*inner.info).fabric_attr,
                    &mut inner.fabric,
                    ptr::null_mut(),
                ) as i64,
            )?;
            check(
                "fi_domain",
                sys::cart_fi_domain(inner.fabric, inner.info, &mut inner.domain, ptr::null_mut())
                    as i64,
            )?;
            let mut cq_attr = sys::fi_cq_attr {
                size: 4096,
                format: sys::FI_CQ_FORMAT_DATA,
                wait_obj: if caps.wait_fd && !opts.busy_poll {
                    sys::FI_WAIT_FD
                } else {
                    sys::FI_WAIT_NONE
                },
                ..Default::default()
            };
            check(
                "fi_cq_open",
                sys::cart_fi_cq_open(inner.domain, &mut cq_attr, &mut inner.cq, ptr::null_mut())
                    as i64,
            )?;
            let mut av_attr = sys::fi_av_attr {
                type_: sys::FI_AV_TABLE,
                count: 256,
                ..Default::default()
            };
            check(
                "fi_av_open",
                sys::cart_fi_av_open(inner.domain, &mut av_attr, &mut inner.av, ptr::null_mut())
                    as i64,
            )?;
            check(
                "fi_endpoint",
                sys::cart_fi_endpoint(inner.domain, inner.info, &mut inner.ep, ptr::null_mut())
                    as i64,
            )?;
            check(
                "fi_ep_bind(av)",
                sys::cart_fi_ep_bind(inner.ep, &mut (*inner.av).fid, 0) as i64,
            )?;
            check(
                "fi_ep_bind(cq)",
                sys::cart_fi_ep_bind(
                    inner.ep,
                    &mut (*inner.cq).fid,
                    (sys::FI_TRANSMIT | sys::FI_RECV) as u64,
                ) as i64,
            )?;
            check("fi_enable", sys::cart_fi_enable(inner.ep) as i64)?;
        }
        let mut wait_fd = None;
        if caps.wait_fd && !opts.busy_poll {
            let mut fd: libc::c_int = -1;
            // SAFETY: FI_GETWAIT writes one int (the fd) into the pointed-to storage.
            let rc = unsafe {
                sys::cart_fi_control(
                    &mut (*inner.cq).fid,
                    sys::FI_GETWAIT as i32,
                    &mut fd as *mut libc::c_int as *mut c_void,
                )
            };
            if rc == 0 && fd >= 0 {
                wait_fd = Some(fd);
            } else {
                tracing::warn!(
                    rc,
                    "FI_GETWAIT failed; falling back to polling with back-off"
                );
            }
        }
        let mut name = vec![0u8; 256];
        let mut len = name.len();
        // SAFETY: name has `len` writable bytes; fi_getname updates len.
        let rc = unsafe {
            sys::cart_fi_getname(
                &mut (*inner.ep).fid,
                name.as_mut_ptr() as *mut c_void,
                &mut len,
            )
        };
        check("fi_getname", rc as i64)?;
        name.truncate(len);

        let t = OfiTransport {
            inner: Arc::new(inner),
            provider: opts.provider,
            prov_name,
            mr_mode,
            self_addr: name,
            wait_fd,
            recv_size: opts.recv_size,
            peers: Mutex::new(HashMap::default()),
            backlog: Mutex::new(VecDeque::new()),
            backlog_len: AtomicUsize::new(0),
            repost: Mutex::new(Vec::new()),
            repost_len: AtomicUsize::new(0),
            next_key: AtomicU64::new(1),
        };
        let mut slots = Vec::with_capacity(opts.recv_count);
        for _ in 0..opts.recv_count.max(1) {
            let slot = Box::into_raw(Box::new(RecvSlot {
                hdr: OpHeader {
                    ctx: sys::fi_context2::default(),
                    kind: KIND_RECV,
                },
                buf: vec![0u8; opts.recv_size].into_boxed_slice(),
            }));
            slots.push(slot);
        }
        // Record ownership before posting so Drop frees them whatever happens.
        let inner_ptr = Arc::as_ptr(&t.inner) as *mut Inner;
        // SAFETY: the Arc was just created and not shared yet, so this exclusive write is the only
        // access; it only fills the slot list.
        unsafe { (*inner_ptr).slots = slots.clone() };
        for s in slots {
            t.post_recv(s)?;
        }
        tracing::debug!(provider = %t.prov_name, mr_mode = format!("{mr_mode:#x}"), wait_fd = ?t.wait_fd, "ofi endpoint open");
        Ok(t)
    }

    /// The mr_mode bits the provider returned.
    pub fn mr_mode(&self) -> u32 {
        self.mr_mode
    }

    /// Which provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    fn post_recv(&self, s: *mut RecvSlot) -> Result<bool, TransportError> {
        // SAFETY: s is a live RecvSlot owned by Inner.slots; its buffer and context stay valid until
        // the completion is read (the slot is not touched again until then).
        let rc = unsafe {
            let buf: &mut [u8] = &mut (*s).buf;
            sys::cart_fi_recv(
                self.inner.ep,
                buf.as_mut_ptr() as *mut c_void,
                buf.len(),
                ptr::null_mut(),
                sys::FI_ADDR_UNSPEC,
                s as *mut c_void,
            )
        } as i64;
        if rc == EAGAIN {
            self.repost
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s);
            self.repost_len.fetch_add(1, Ordering::Release);
            return Ok(false);
        }
        check("fi_recv", rc)?;
        Ok(true)
    }

    /// Posts an op; on EAGAIN parks it in the backlog. On other errors returns it.
    fn post(&self, ctx: Box<OpCtx>) -> Result<(), TransportError> {
        let p = Box::into_raw(ctx);
        // SAFETY: p is a live OpCtx; its buffers (msg / region) stay alive inside it until the
        // completion hands the Box back to us.
        let rc = unsafe {
            match (*p).post {
                Post::Send => sys::cart_fi_send(
                    self.inner.ep,
                    (*p).msg.as_ptr() as *const c_void,
                    (*p).msg.len(),
                    ptr::null_mut(),
                    (*p).peer,
                    p as *mut c_void,
                ),
                Post::Rma {
                    dir: RmaDir::Get,
                    local,
                    len,
                    desc,
                    addr,
                    key,
                } => sys::cart_fi_read(
                    self.inner.ep,
                    local as *mut c_void,
                    len,
                    desc,
                    (*p).peer,
                    addr,
                    key,
                    p as *mut c_void,
                ),
                Post::Rma {
                    dir: RmaDir::Put,
                    local,
                    len,
                    desc,
                    addr,
                    key,
                } => sys::cart_fi_write(
                    self.inner.ep,
                    local as *const c_void,
                    len,
                    desc,
                    (*p).peer,
                    addr,
                    key,
                    p as *mut c_void,
                ),
            }
        } as i64;
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: the post failed, so libfabric did not keep p; we own it again.
        let ctx = unsafe { Box::from_raw(p) };
        if rc == EAGAIN {
            let now = std::time::Instant::now();
            let mut ctx = ctx;
            let first = *ctx.deferred.get_or_insert(now);
            if now.duration_since(first) >= BACKLOG_GIVE_UP {
                return Err(TransportError::Unreachable {
                    peer: ctx.peer,
                    reason: format!(
                        "the provider refused the post (EAGAIN) for {BACKLOG_GIVE_UP:?} (connection refused?)"
                    ),
                });
            }
            self.backlog
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(ctx);
            self.backlog_len.fetch_add(1, Ordering::Release);
            return Ok(());
        }
        let call = if matches!(ctx.post, Post::Send) {
            "fi_send"
        } else {
            "fi_read/fi_write"
        };
        check(call, rc).map(|_| ())
    }

    fn retry_backlog(&self, f: &mut dyn FnMut(Event<'_>)) {
        if self.repost_len.load(Ordering::Acquire) > 0 {
            let slots: Vec<_> =
                std::mem::take(&mut *self.repost.lock().unwrap_or_else(|e| e.into_inner()));
            self.repost_len.fetch_sub(slots.len(), Ordering::Release);
            for s in slots {
                if let Err(e) = self.post_recv(s) {
                    tracing::error!(error = %e, "re-posting a receive failed");
                }
            }
        }
        if self.backlog_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut q = std::mem::take(&mut *self.backlog.lock().unwrap_or_else(|e| e.into_inner()));
        self.backlog_len.fetch_sub(q.len(), Ordering::Release);
        while let Some(ctx) = q.pop_front() {
            let op = ctx.op;
            let send = matches!(ctx.post, Post::Send);
            if let Err(e) = self.post(ctx) {
                // The operation will never complete through the CQ: report its failure here.
                tracing::debug!(op, error = %e, "deferred post failed");
                if send {
                    f(Event::SendDone(op, Err(e)));
                } else {
                    f(Event::RmaDone(op, Err(e)));
                }
            }
        }
    }

    fn complete(
        &self,
        p: *mut c_void,
        len: usize,
        err: Option<TransportError>,
        f: &mut dyn FnMut(Event<'_>),
    ) {
        if p.is_null() {
            return;
        }
        // SAFETY: every context we post starts with OpHeader; kind tells which struct it is.
        let kind = unsafe { (*(p as *mut OpHeader)).kind };
        match kind {
            KIND_RECV => {
                let s = p as *mut RecvSlot;
                if err.is_none() {
                    // SAFETY: the receive completed, so the provider no longer writes the buffer;
                    // len is bounded by the buffer size.
                    let data: &[u8] = unsafe {
                        let b: &[u8] = &(*s).buf;
                        &b[..len.min(b.len())]
                    };
                    f(Event::Recv(data));
                } else if let Some(e) = err {
                    if !matches!(e, TransportError::Canceled) {
                        tracing::warn!(error = %e, "receive completed with error (message dropped)");
                    } else {
                        return; // endpoint shutting down: do not re-post
                    }
                }
                if let Err(e) = self.post_recv(s) {
                    tracing::error!(error = %e, "re-posting a receive failed");
                }
            }
            KIND_SEND | KIND_RMA => {
                // SAFETY: p came from Box::into_raw in post() and is completed exactly once.
                let ctx = unsafe { Box::from_raw(p as *mut OpCtx) };
                let res = match err {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
                if kind == KIND_SEND {
                    f(Event::SendDone(ctx.op, res));
                } else {
                    f(Event::RmaDone(ctx.op, res));
                }
            }
            _ => tracing::error!(kind, "completion with unknown context kind"),
        }
    }

    fn read_error(&self, f: &mut dyn FnMut(Event<'_>)) -> Result<usize, TransportError> {
        let mut e = sys::fi_cq_err_entry::default();
        // SAFETY: e is a valid err entry to fill; flags 0.
        let rc = unsafe { sys::cart_fi_cq_readerr(self.inner.cq, &mut e, 0) } as i64;
        if rc == EAGAIN {
            return Ok(0);
        }
        check("fi_cq_readerr", rc)?;
        let err = if e.err == sys::FI_ECANCELED as i32 {
            TransportError::Canceled
        } else {
            let mut buf = [0 as libc::c_char; 256];
            // SAFETY: buf has 256 bytes; the returned pointer is NUL-terminated (ours or static).
            let detail = unsafe {
                let s = sys::cart_fi_cq_strerror(
                    self.inner.cq,
                    e.prov_errno,
                    e.err_data,
                    buf.as_mut_ptr(),
                    buf.len(),
                );
                if s.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(s).to_string_lossy().into_owned()
                }
            };
            let peer = if e.op_context.is_null() {
                u64::MAX
            } else {
                // SAFETY: kind byte of our own context.
                match unsafe { (*(e.op_context as *mut OpHeader)).kind } {
                    // SAFETY: send/RMA contexts are OpCtx.
                    KIND_SEND | KIND_RMA => unsafe { (*(e.op_context as *mut OpCtx)).peer },
                    _ => u64::MAX,
                }
            };
            let errno = e.err;
            if [
                libc::ECONNREFUSED,
                libc::ECONNRESET,
                libc::EHOSTUNREACH,
                libc::ENOTCONN,
                libc::EPIPE,
                libc::ECONNABORTED,
                libc::EIO,
            ]
            .contains(&errno)
            {
                TransportError::Unreachable {
                    peer,
                    reason: format!("{} ({detail})", strerror(errno as i64)),
                }
            } else {
                TransportError::Fabric {
                    call: "completion",
                    rc: -(errno as i64),
                    msg: format!("{} ({detail})", strerror(errno as i64)),
                }
            }
        };
        self.complete(e.op_context, e.len, Some(err), f);
        Ok(1)
    }
}

impl std::fmt::Debug for OfiTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfiTransport")
            .field("provider", &self.prov_name)
            .field("mr_mode", &format_args!("{:#x}", self.mr_mode))
            .field("wait_fd", &self.wait_fd)
            .finish()
    }
}

/// A transport's wait fd, kept valid by holding the transport itself.
pub struct WaitFd {
    fd: RawFd,
    _owner: Arc<dyn Transport>,
}

impl std::os::fd::AsRawFd for WaitFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// Registers `t`'s wait fd (if it has one) with the current tokio reactor.
pub fn async_wait_fd(
    t: &Arc<dyn Transport>,
) -> Option<std::io::Result<tokio::io::unix::AsyncFd<WaitFd>>> {
    let fd = t.wait_fd()?;
    let w = WaitFd {
        fd,
        _owner: t.clone(),
    };
    // SAFETY: Transport::wait_fd promises the fd stays open for the transport's lifetime, and the
    // WaitFd owns an Arc to the transport, so the fd outlives the AsyncFd; as_raw_fd is constant.
    Some(
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(w, tokio::io::Interest::READABLE)
        }
        .map_err(|e| e.into_parts().1),
    )
}

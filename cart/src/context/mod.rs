//! A cart context: one transport endpoint + CQ, its progress task, in-flight RPC tracking with
//! per-endpoint credits, request dispatch to registered protocols, and bulk transfers.
//!
//! Progress runs as a task on the runtime that created the context (DAOS: the owning xstream
//! progresses its context), so a completion wakes the waiting RPC future on the same runtime with
//! no thread hop when that runtime is current-thread. The task polls the CQ; while completions keep
//! coming or within `spin` (default 200 µs) of the last one it only yields, afterwards it blocks on
//! the CQ wait fd through `AsyncFd` (tcp) or polls with back-off (shm: no wait fd). A send wakes a
//! sleeping loop so the reply is polled promptly.
//!
//! Submodules: `progress` (the progress task), `serve` (events, request dispatch, replies,
//! overflowed bodies), `send` (posting a request, the awaited path and completion callbacks),
//! `gate` (credits and quota), `liveness` (dead peers). This file: the [`Context`] API, pending
//! RPCs and their deadlines, bulk entry points.

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use daos_common::{Der, Hlc, Rank, Tag};
use tokio::sync::{oneshot, Notify};

use crate::config::{Config, Resolved};
use crate::error::{CartError, RpcError};
use crate::group::Group;
use crate::proto::{opcode, Protocol, Registry, Rpc};
use crate::transport::ofi::{OfiOptions, OfiTransport};
use crate::transport::{
    Access, DmaBuf, MemRegion, PeerId, RemoteMem, RmaDir, Transport, TransportError,
};
use crate::wire;

/// The process-wide hybrid logical clock every RPC synchronises.
pub static HLC: Hlc = Hlc::new();

mod gate;
mod liveness;
mod progress;
mod send;
mod serve;

use progress::progress_loop;

/// Where an RPC goes: (group, rank, tag).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The group.
    pub group: Arc<Group>,
    /// Rank in the group.
    pub rank: Rank,
    /// Context index on that rank.
    pub tag: Tag,
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(group: &Arc<Group>, rank: Rank, tag: Tag) -> Endpoint {
        Endpoint {
            group: group.clone(),
            rank,
            tag,
        }
    }
}

/// Internal protocol (DAOS base 0xFF v4): URI lookup of another tag of a rank.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct UriLookup {
    /// The tag whose URI is wanted.
    pub tag: Tag,
}

impl Rpc for UriLookup {
    const OPCODE: u32 = opcode(0xFF, 4, 0);
    type Reply = String;
}

/// Internal protocol: DAOS `crt_proto_query`, which versions of a protocol a server serves.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct ProtoQuery {
    /// Protocol base opcode.
    pub base: u8,
    /// Versions the caller can speak.
    pub versions: Vec<u8>,
}

impl Rpc for ProtoQuery {
    const OPCODE: u32 = opcode(0xFF, 4, 1);
    const MAX_REQ: usize = 1024;
    type Reply = u8;
}

struct PendingRpc {
    /// Who learns the outcome.
    waiter: send::Waiter,
    /// An overflowed request body, registered until the RPC completes.
    _hold: Option<Arc<MemRegion>>,
    peer: PeerId,
    /// The endpoint's group, as `Arc::as_ptr` (for `abort`; the endpoint state keeps the group
    /// alive, so the address is not reused while the context lives).
    group: usize,
    rank: Rank,
    tag: Tag,
    /// When it was sent, in ns since [`CtxInner::epoch`] (liveness probes start after
    /// [`liveness::PROBE_AFTER`]).
    sent: u64,
    /// Opcode and timeout, for the `DER_TIMEDOUT` error.
    opcode: u32,
    after: Duration,
    /// When it times out, in ns since [`CtxInner::epoch`] (expired by the progress loop).
    deadline: u64,
}

struct ReplyMsg {
    rc: i32,
    body: Vec<u8>,
}

/// An overflowed body kept registered until its reader releases it (or it expires).
type Held = (Arc<MemRegion>, Instant);

pub(crate) struct EpState {
    peer: PeerId,
    credits: Option<Arc<gate::Gate>>,
    /// The context's quota gate (the same one as `CtxInner::quota`), so that the permits of an
    /// RPC completed by callback need one reference, on this state, to be given back.
    quota: Option<Arc<gate::Gate>>,
    _group: Arc<Group>,
}

pub(crate) struct CtxInner {
    pub(crate) t: Arc<dyn Transport>,
    cfg: Resolved,
    rank: Rank,
    tag: Tag,
    uri: String,
    registry: RwLock<Registry>,
    pending: Mutex<HashMap<u64, PendingRpc>>,
    rma_pending: Mutex<HashMap<u64, oneshot::Sender<Result<(), TransportError>>>>,
    next_id: AtomicU64,
    next_op: AtomicU64,
    eps: Mutex<HashMap<(usize, Rank, Tag), Arc<EpState>>>,
    overflow_hold: Mutex<HashMap<(PeerId, u64), Held>>,
    siblings: OnceLock<Vec<String>>,
    wake: Notify,
    sleeping: AtomicBool,
    /// Set by every send/RMA: the progress loop restarts its spin window (a reply is coming).
    kicked: AtomicBool,
    shutdown: AtomicBool,
    owner: OnceLock<Weak<Owner>>,
    /// Dead peers and liveness probes (see `liveness`).
    live: Mutex<liveness::Liveness>,
    /// Number of peers marked dead (lets the hot path skip the `live` lock).
    dead_count: AtomicUsize,
    /// `D_QUOTA_RPCS`: RPCs in flight on the whole context (None = unlimited).
    quota: Option<Arc<gate::Gate>>,
    /// Time base of the deadlines below.
    epoch: Instant,
    /// Earliest deadline of a pending RPC (ns since `epoch`; u64::MAX = none). Written under the
    /// `pending` lock; the progress loop compares it with the time it reads anyway, so a per-RPC
    /// timeout costs no timer registration (a tokio timer per RPC cost ~0.1 µs of each round trip).
    next_deadline: AtomicU64,
    /// The progress loop's latest clock reading (ns since `epoch`), refreshed every iteration:
    /// what a send stamps its pending entry with while the loop is awake (one clock read fewer
    /// per RPC; while it sleeps a send reads the clock).
    clock_ns: AtomicU64,
    /// Wall-clock ns since the HLC epoch minus monotonic ns since `epoch`, re-measured by the
    /// progress loop every [`liveness::CHECK_EVERY`]: with `clock_ns` it gives the HLC physical
    /// time without a clock read (stamping and receiving a message read the clock twice per
    /// round trip per side before; the error is one loop iteration, or the 100 ms between
    /// re-measurements if the wall clock is stepped, well inside the HLC's 1 s epsilon).
    wall_offset_ns: AtomicU64,
    /// The runtime that runs the progress loop (tasks spawned for callers outside any runtime).
    rt: tokio::runtime::Handle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Owner(Arc<CtxInner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A cart context (DAOS `crt_context_t`). Cheap to clone; the last clone shuts it down.
#[derive(Clone)]
pub struct Context {
    inner: Arc<CtxInner>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("rank", &self.inner.rank)
            .field("tag", &self.inner.tag)
            .field("uri", &self.inner.uri)
            .finish()
    }
}

/// What a handler knows about the request it serves.
#[derive(Clone)]
pub struct RpcCtx {
    inner: Arc<CtxInner>,
    /// The requester's transport peer.
    pub peer: PeerId,
    /// Requester rank (as it claims).
    pub src_rank: Rank,
    /// Requester tag.
    pub src_tag: Tag,
    /// The opcode being served.
    pub opcode: u32,
}

/// What the dispatcher knows of a request, borrowed: an [`RpcCtx`] without the reference on the
/// context, which only a handler that keeps it (an async one) takes ([`RpcRef::to_owned`]). On
/// the self-test RPC the reference cost ~15 ns of a ~230 ns server path.
#[derive(Clone, Copy)]
pub struct RpcRef<'a> {
    pub(crate) inner: &'a Arc<CtxInner>,
    /// The requester's transport peer.
    pub peer: PeerId,
    /// Requester rank (as it claims).
    pub src_rank: Rank,
    /// Requester tag.
    pub src_tag: Tag,
    /// The opcode being served.
    pub opcode: u32,
}

impl RpcRef<'_> {
    /// The owned context a handler keeps.
    pub fn to_owned(&self) -> RpcCtx {
        RpcCtx {
            inner: self.inner.clone(),
            peer: self.peer,
            src_rank: self.src_rank,
            src_tag: self.src_tag,
            opcode: self.opcode,
        }
    }
}

/// Formats a transport address as a URI: `<provider>://<hex>`.
pub fn format_uri(provider: &str, addr: &[u8]) -> String {
    let mut s = String::with_capacity(provider.len() + 3 + addr.len() * 2);
    s.push_str(provider);
    s.push_str("://");
    for b in addr {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses a URI made by [`format_uri`], checking the provider.
pub fn parse_uri(uri: &str, provider: &str) -> Result<Vec<u8>, CartError> {
    let (p, hex) = uri
        .split_once("://")
        .ok_or_else(|| CartError::Inval(format!("URI {uri:?} is not <provider>://<address>")))?;
    if p != provider {
        return Err(CartError::Inval(format!(
            "URI {uri:?} is for provider {p:?} but this context uses {provider:?} (set D_PROVIDER to match the servers)"
        )));
    }
    if hex.len() % 2 != 0 || hex.is_empty() {
        return Err(CartError::Inval(format!("URI {uri:?}: address is not hex")));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| CartError::Inval(format!("URI {uri:?}: address is not hex")))
        })
        .collect()
}

impl Context {
    /// Opens a libfabric context for `rank`/`tag` from `cfg` (field > env > default). The port is
    /// `D_PORT + tag`. Must be called inside a tokio runtime, which then runs its progress.
    pub fn new(cfg: &Config, rank: Rank, tag: Tag) -> Result<Context, CartError> {
        let r = cfg.resolve()?;
        let port = match r.port {
            Some(p) if r.provider.caps().uses_port => Some(
                p.checked_add(
                    u16::try_from(tag)
                        .map_err(|_| CartError::Config(format!("tag {tag} too large")))?,
                )
                .ok_or_else(|| CartError::Config(format!("D_PORT {p} + tag {tag} overflows")))?,
            ),
            _ => None,
        };
        // A named NIC binds its own IPv4 address (as DAOS resolves D_INTERFACE); an interface that
        // does not exist is an error here, not a silent bind to whatever the provider picks.
        let node = match r.interface.as_deref() {
            Some(i) if i != "lo" && r.provider.caps().source_node => Some(
                crate::transport::ofi::interface_ipv4(i)
                    .map_err(|e| CartError::Config(format!("D_INTERFACE: {e}")))?
                    .to_string(),
            ),
            _ => r.node(),
        };
        let t = OfiTransport::open(&OfiOptions {
            provider: r.provider,
            node,
            domain: r.fi_domain(),
            port,
            recv_count: r.recv_count,
            recv_size: r.inline_limit.max(1024) + 1024,
            busy_poll: r.busy_poll,
        })?;
        Context::with_transport(Arc::new(t), r, rank, tag)
    }

    /// A context over any transport (e.g. loopback).
    pub fn with_transport(
        t: Arc<dyn Transport>,
        cfg: Resolved,
        rank: Rank,
        tag: Tag,
    ) -> Result<Context, CartError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            CartError::Config(
                "a cart Context must be created inside a tokio runtime (it runs the progress task)"
                    .into(),
            )
        })?;
        let uri = format_uri(t.provider_name(), t.self_addr());
        let cfg_quota = cfg.quota_rpcs;
        let inner = Arc::new(CtxInner {
            t,
            cfg,
            rank,
            tag,
            uri,
            registry: RwLock::new(Registry::default()),
            pending: Mutex::new(HashMap::default()),
            rma_pending: Mutex::new(HashMap::default()),
            next_id: AtomicU64::new(1),
            next_op: AtomicU64::new(1),
            eps: Mutex::new(HashMap::default()),
            overflow_hold: Mutex::new(HashMap::default()),
            siblings: OnceLock::new(),
            wake: Notify::new(),
            sleeping: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            owner: OnceLock::new(),
            live: Mutex::new(liveness::Liveness::default()),
            dead_count: AtomicUsize::new(0),
            quota: (cfg_quota > 0).then(|| gate::Gate::new(cfg_quota)),
            epoch: Instant::now(),
            next_deadline: AtomicU64::new(u64::MAX),
            clock_ns: AtomicU64::new(0),
            wall_offset_ns: AtomicU64::new(0),
            rt: rt.clone(),
        });
        inner.measure_wall_offset();
        let owner = Arc::new(Owner(inner.clone()));
        let _ = inner.owner.set(Arc::downgrade(&owner));
        let ctx = Context {
            inner: inner.clone(),
            _owner: owner,
        };
        ctx.register(
            Protocol::new("cart-internal", 0xFF, 4)
                .handler(|rc: RpcCtx, req: UriLookup| async move {
                    let sib = rc.inner.siblings.get();
                    match sib.and_then(|s| s.get(req.tag as usize)) {
                        Some(u) => Ok(u.clone()),
                        None if req.tag == rc.inner.tag => Ok(rc.inner.uri.clone()),
                        None => Err(RpcError::new(
                            Der::Nonexist,
                            format!(
                                "rank {} serves {} contexts; no tag {}",
                                rc.inner.rank,
                                sib.map_or(1, Vec::len),
                                req.tag
                            ),
                        )),
                    }
                })
                .handler(|rc: RpcCtx, req: ProtoQuery| async move {
                    rc.inner
                        .registry
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .best_version(req.base, &req.versions)
                }),
        )?;
        ctx.register(crate::selftest::protocol())?;
        rt.spawn(progress_loop(inner));
        Ok(ctx)
    }

    /// This context's URI (`<provider>://<hex address>`).
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }

    /// Rank.
    pub fn rank(&self) -> Rank {
        self.inner.rank
    }

    /// Tag.
    pub fn tag(&self) -> Tag {
        self.inner.tag
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Resolved {
        &self.inner.cfg
    }

    /// The transport (e.g. for its provider name).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.t
    }

    /// Registers a protocol's handlers.
    pub fn register(&self, p: Protocol) -> Result<(), CartError> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register(p)
    }

    /// Tells context 0 of a server the URIs of all its contexts (index = tag), for URI lookups.
    pub fn set_sibling_uris(&self, uris: Vec<String>) {
        let _ = self.inner.siblings.set(uris);
    }

    /// Sends a typed RPC and waits for its reply (default timeout).
    pub async fn send<R: Rpc>(&self, ep: &Endpoint, req: &R) -> Result<R::Reply, CartError> {
        self.send_with(ep, req, None).await
    }

    /// Sends a typed RPC with a per-RPC timeout override.
    pub async fn send_with<R: Rpc>(
        &self,
        ep: &Endpoint,
        req: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Reply, CartError> {
        self.send_as::<R, R>(ep, req, timeout).await
    }

    /// Sends RPC `R` with a body encoded from `body`, which must encode exactly as an `R` would:
    /// e.g. a borrowing twin of `R`, so a payload the caller keeps is not copied into an owned
    /// request for every RPC (the self-test loop sends its IOV this way).
    pub async fn send_as<R: Rpc, B: bincode::Encode>(
        &self,
        ep: &Endpoint,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<R::Reply, CartError> {
        let body = wire::Framed::encode("encode request", body, R::MAX_REQ)?;
        let out = self
            .inner
            .clone()
            .call(ep, R::OPCODE, body, timeout, false)
            .await?;
        wire::decode_body(&out, R::MAX_REPLY).map_err(|reason| CartError::Codec {
            what: "decode reply",
            reason,
        })
    }

    /// DAOS `crt_proto_query`: the highest of `versions` that `ep` serves for protocol `base`
    /// (`DER_UNREG`: no such protocol there; `DER_MISMATCH`: none of the versions). Clients use it
    /// to pick the protocol version to speak before sending.
    pub async fn proto_query(
        &self,
        ep: &Endpoint,
        base: u8,
        versions: &[u8],
    ) -> Result<u8, CartError> {
        self.send(
            ep,
            &ProtoQuery {
                base,
                versions: versions.to_vec(),
            },
        )
        .await
    }

    /// DAOS `crt_ep_abort`: fails every RPC pending on (`rank`, `tag`) of `group`, or on every tag
    /// of the rank when `tag` is None, with `DER_CANCELED`; returns how many. Queued and later
    /// RPCs are not affected.
    pub fn abort(&self, group: &Arc<Group>, rank: Rank, tag: Option<Tag>) -> usize {
        // Completed outside the lock: a completion callback may send again.
        let aborted: Vec<PendingRpc> = {
            let mut pending = lock(&self.inner.pending);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| {
                    p.group == Arc::as_ptr(group) as usize
                        && p.rank == rank
                        && tag.is_none_or(|t| t == p.tag)
                })
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        let n = aborted.len();
        for p in aborted {
            let msg = format!("aborted: RPCs to rank {rank} tag {} were aborted", p.tag);
            p.complete(Err(CartError::Canceled(msg)));
        }
        n
    }

    /// Sends a one-way RPC (no reply; returns once handed to the transport).
    pub async fn send_oneway<R: Rpc>(&self, ep: &Endpoint, req: &R) -> Result<(), CartError> {
        let body = wire::Framed::encode("encode request", req, R::MAX_REQ)?;
        self.inner
            .clone()
            .call(ep, R::OPCODE, body, None, true)
            .await
            .map(|_| ())
    }

    /// Sends raw body bytes under an opcode and returns the raw reply body.
    pub async fn call_raw(
        &self,
        ep: &Endpoint,
        opcode: u32,
        body: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, CartError> {
        self.inner
            .clone()
            .call(ep, opcode, wire::Framed::raw(body), timeout, false)
            .await
    }

    /// Registers local buffers (a scatter-gather list) for bulk access by peers.
    pub fn bulk_create(
        &self,
        bufs: Vec<DmaBuf>,
        access: Access,
    ) -> Result<crate::bulk::Bulk, CartError> {
        self.inner.bulk_create(bufs, access)
    }

    /// `crt_bulk_transfer`: moves `len` bytes between `remote[remote_off..]` and `local[local_off..]`.
    pub async fn bulk_transfer(
        &self,
        op: crate::bulk::BulkOp,
        remote: &crate::bulk::BulkHandle,
        remote_off: u64,
        local: &crate::bulk::Bulk,
        local_off: u64,
        len: u64,
    ) -> Result<(), CartError> {
        self.inner
            .bulk_transfer(op, remote, remote_off, local, local_off, len)
            .await
    }

    /// Stops progress and fails every pending RPC with `DER_CANCELED`.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl RpcCtx {
    /// The serving context's rank.
    pub fn rank(&self) -> Rank {
        self.inner.rank
    }
    /// The serving context's tag.
    pub fn tag(&self) -> Tag {
        self.inner.tag
    }
    /// The serving context's resolved configuration.
    pub fn config(&self) -> &Resolved {
        &self.inner.cfg
    }
    /// The serving context, if still open.
    pub fn context(&self) -> Option<Context> {
        let owner = self.inner.owner.get()?.upgrade()?;
        Some(Context {
            inner: self.inner.clone(),
            _owner: owner,
        })
    }
    /// See [`Context::bulk_create`].
    pub fn bulk_create(
        &self,
        bufs: Vec<DmaBuf>,
        access: Access,
    ) -> Result<crate::bulk::Bulk, CartError> {
        self.inner.bulk_create(bufs, access)
    }
    /// See [`Context::bulk_transfer`].
    pub async fn bulk_transfer(
        &self,
        op: crate::bulk::BulkOp,
        remote: &crate::bulk::BulkHandle,
        remote_off: u64,
        local: &crate::bulk::Bulk,
        local_off: u64,
        len: u64,
    ) -> Result<(), CartError> {
        self.inner
            .bulk_transfer(op, remote, remote_off, local, local_off, len)
            .await
    }
}

/// Removes a pending RPC when its future is dropped (cancel on drop) before it completed.
struct PendingGuard<'a> {
    inner: &'a CtxInner,
    id: u64,
    /// Cleared once the RPC completed: whoever completed it already removed the entry.
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.inner.pending).remove(&self.id);
        }
    }
}

impl CtxInner {
    fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let drained: Vec<PendingRpc> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in drained {
            p.complete(Err(CartError::Canceled("context shut down".into())));
        }
        lock(&self.rma_pending).clear();
    }

    fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    async fn resolve(self: &Arc<Self>, ep: &Endpoint) -> Result<Arc<EpState>, CartError> {
        let key = (Arc::as_ptr(&ep.group) as usize, ep.rank, ep.tag);
        if let Some(s) = lock(&self.eps).get(&key) {
            return Ok(s.clone());
        }
        let uri = if ep.tag == 0 {
            ep.group.uri(ep.rank)?.to_string()
        } else {
            let ep0 = Endpoint::new(&ep.group, ep.rank, 0);
            let body = wire::Framed::encode("encode request", &UriLookup { tag: ep.tag }, 64)?;
            let out = Box::pin(
                self.clone()
                    .call(&ep0, UriLookup::OPCODE, body, None, false),
            )
            .await?;
            wire::decode_body::<String>(&out, 4096).map_err(|reason| CartError::Codec {
                what: "decode URI lookup",
                reason,
            })?
        };
        let raw = parse_uri(&uri, self.t.provider_name())?;
        let peer = self
            .t
            .insert_addr(&raw)
            .map_err(|e| CartError::Unreachable {
                rank: ep.rank,
                tag: ep.tag,
                reason: e.to_string(),
            })?;
        let credits = (self.cfg.credits > 0).then(|| gate::Gate::new(self.cfg.credits));
        let st = Arc::new(EpState {
            peer,
            credits,
            quota: self.quota.clone(),
            _group: ep.group.clone(),
        });
        lock(&self.eps).insert(key, st.clone());
        Ok(st)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn rma_wait(
        &self,
        dir: RmaDir,
        local: &Arc<MemRegion>,
        local_off: usize,
        peer: PeerId,
        remote: &RemoteMem,
        remote_off: u64,
        len: usize,
    ) -> Result<(), CartError> {
        let rx = self.rma_start(dir, local, local_off, peer, remote, remote_off, len)?;
        self.rma_finish(rx).await
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rma_start(
        &self,
        dir: RmaDir,
        local: &Arc<MemRegion>,
        local_off: usize,
        peer: PeerId,
        remote: &RemoteMem,
        remote_off: u64,
        len: usize,
    ) -> Result<oneshot::Receiver<Result<(), TransportError>>, CartError> {
        let op = self.next_op.fetch_add(1, Ordering::Relaxed) | (1 << 63);
        let (tx, rx) = oneshot::channel();
        lock(&self.rma_pending).insert(op, tx);
        if let Err(e) = self
            .t
            .rma(dir, local, local_off, peer, remote, remote_off, len, op)
        {
            lock(&self.rma_pending).remove(&op);
            return Err(e.into());
        }
        self.kick();
        Ok(rx)
    }

    pub(crate) async fn rma_finish(
        &self,
        rx: oneshot::Receiver<Result<(), TransportError>>,
    ) -> Result<(), CartError> {
        match tokio::time::timeout(self.cfg.timeout, rx).await {
            Err(_) => Err(CartError::Timeout {
                opcode: 0,
                rank: u32::MAX,
                tag: u32::MAX,
                after: self.cfg.timeout,
            }),
            Ok(Err(_)) => Err(CartError::Canceled(
                "context shut down during a bulk transfer".into(),
            )),
            Ok(Ok(r)) => r.map_err(CartError::from),
        }
    }

    /// Registers an overflowed body read-only where it lies (after the header room of a framed
    /// message), returning the region and its descriptor.
    fn register_body(
        &self,
        body: wire::Framed,
    ) -> Result<(Arc<MemRegion>, RemoteMem), TransportError> {
        let (buf, off) = body.into_buffer();
        let region = self.t.register(DmaBuf::from_vec(buf), Access::ReadOnly)?;
        let mut desc = region.remote(self.t.self_addr());
        desc.base += off as u64;
        desc.len -= off as u64;
        Ok((region, desc))
    }

    fn ns_since_epoch(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// The time now (ns since `epoch`) to within one progress-loop iteration.
    fn recent_ns(&self) -> u64 {
        if self.sleeping.load(Ordering::Acquire) {
            self.ns_since_epoch(Instant::now())
        } else {
            self.clock_ns.load(Ordering::Acquire)
        }
    }

    /// Re-measures the wall-clock offset (see `wall_offset_ns`).
    fn measure_wall_offset(&self) {
        let mono = self.ns_since_epoch(Instant::now());
        let wall = daos_common::hlc::wall_nsec();
        self.wall_offset_ns
            .store(wall.wrapping_sub(mono), Ordering::Release);
    }

    /// The HLC physical time now, to within one progress-loop iteration (a clock read while the
    /// loop sleeps).
    fn coarse_pt(&self) -> u64 {
        let mono = self.recent_ns();
        let off = self.wall_offset_ns.load(Ordering::Acquire);
        daos_common::hlc::nsec_to_hlc(mono.wrapping_add(off).min(u64::MAX / 16))
    }

    /// An HLC timestamp for a message sent now.
    fn hlc_now(&self) -> u64 {
        HLC.now_at(self.coarse_pt())
    }

    /// Records the progress loop's clock reading; returns it in ns since `epoch`.
    fn tick(&self, now: Instant) -> u64 {
        let ns = self.ns_since_epoch(now);
        self.clock_ns.store(ns, Ordering::Release);
        ns
    }

    /// Time until the earliest pending RPC deadline (None: nothing pending).
    fn until_next_deadline(&self, now: Instant) -> Option<Duration> {
        let d = self.next_deadline.load(Ordering::Acquire);
        (d != u64::MAX).then(|| Duration::from_nanos(d.saturating_sub(self.ns_since_epoch(now))))
    }

    /// Fails every pending RPC whose deadline has passed with `DER_TIMEDOUT`. Cheap when none has:
    /// one atomic load.
    fn expire_rpcs(&self, now_ns: u64) {
        if now_ns < self.next_deadline.load(Ordering::Acquire) {
            return;
        }
        let expired: Vec<PendingRpc> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.deadline <= now_ns)
                .map(|(id, _)| *id)
                .collect();
            let out = ids.iter().filter_map(|id| pending.remove(id)).collect();
            let next = pending.values().map(|p| p.deadline).min();
            self.next_deadline
                .store(next.unwrap_or(u64::MAX), Ordering::Release);
            out
        };
        for p in expired {
            let e = CartError::Timeout {
                opcode: p.opcode,
                rank: p.rank,
                tag: p.tag,
                after: p.after,
            };
            p.complete(Err(e));
        }
    }

    fn has_outstanding(&self, now: Instant) -> bool {
        if !lock(&self.pending).is_empty() || !lock(&self.rma_pending).is_empty() {
            return true;
        }
        self.expire_holds(now);
        !lock(&self.overflow_hold).is_empty()
    }

    fn expire_holds(&self, now: Instant) {
        let ttl = self.cfg.timeout * 2;
        let mut h = lock(&self.overflow_hold);
        if !h.is_empty() {
            h.retain(|_, (_, t)| now.duration_since(*t) < ttl);
        }
    }
}

//! The self-test protocol (DAOS base 0xF2, version 1), registered by every context: sessions with
//! pre-registered server buffers, the test RPC (EMPTY / IOV / BULK_GET send, EMPTY / IOV / BULK_PUT
//! reply), and the run loop (≤ `max_inflight` RPCs in flight, round-robin over the endpoints, one
//! [`Sample`] per RPC). The CLI calls [`run`] locally; with `-m` it sends START to a remote master,
//! which runs the same loop, and polls STATUS.

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use daos_common::{DaosErrno, Der, Rank, Tag};

use crate::bulk::{Bulk, BulkHandle, BulkOp};
use crate::context::{Context, Endpoint, RpcCtx, RpcRef};
use crate::error::{CartError, RpcError};
use crate::group::Group;
use crate::proto::{self, opcode, Erased, Protocol, Rpc};
use crate::transport::{Access, DmaBuf};
use crate::wire;

/// Self-test protocol base.
pub const BASE: u8 = 0xF2;
/// Version.
pub const VERSION: u8 = 1;

/// Message kinds (DAOS `CRT_SELF_TEST_MSG_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum MsgType {
    /// No payload.
    Empty,
    /// Inline payload.
    Iov,
    /// Server pulls from the client (send side).
    BulkGet,
    /// Server pushes to the client (reply side).
    BulkPut,
}

/// Type and size of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct MsgSpec {
    /// Kind.
    pub ty: MsgType,
    /// Bytes.
    pub size: u32,
}

/// One measured RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Sample {
    /// Index into the endpoint list.
    pub endpoint: u32,
    /// Round trip in nanoseconds.
    pub latency_ns: u64,
    /// 0 or `-DER_*`.
    pub rc: i32,
}

/// Result of a run.
#[derive(Debug, Clone, bincode::Encode, bincode::Decode)]
pub struct RunResult {
    /// Samples in completion order.
    pub samples: Vec<Sample>,
    /// Wall time of the timed loop, ns.
    pub duration_ns: u64,
}

/// OPEN_SESSION: the server prepares `buf_count` buffers for this (send, reply) pair.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct OpenSession {
    /// Send side.
    pub send: MsgSpec,
    /// Reply side.
    pub reply: MsgSpec,
    /// Buffers to preallocate (= max in flight).
    pub buf_count: u32,
}
impl Rpc for OpenSession {
    const OPCODE: u32 = opcode(BASE, VERSION, 0);
    type Reply = u32;
}

/// CLOSE_SESSION.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct CloseSession {
    /// Session id.
    pub id: u32,
}
impl Rpc for CloseSession {
    const OPCODE: u32 = opcode(BASE, VERSION, 1);
    type Reply = ();
}

/// The test RPC.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct TestMsg {
    /// Session id.
    pub session: u32,
    /// Inline payload (IOV send).
    pub iov: Vec<u8>,
    /// Client buffer to pull from (BULK_GET send).
    pub bulk_send: Option<BulkHandle>,
    /// Client buffer to push into (BULK_PUT reply).
    pub bulk_reply: Option<BulkHandle>,
}
impl Rpc for TestMsg {
    const OPCODE: u32 = opcode(BASE, VERSION, 2);
    type Reply = Vec<u8>;
}

/// [`TestMsg`] by reference: the same bytes on the wire, without copying the payload into an owned
/// request for every RPC.
#[derive(bincode::Encode)]
struct TestMsgRef<'a> {
    session: u32,
    iov: &'a [u8],
    bulk_send: Option<&'a BulkHandle>,
    bulk_reply: Option<&'a BulkHandle>,
}

/// [`TestMsg`] as the server reads it: the payload borrowed from the receive buffer.
#[derive(bincode::BorrowDecode)]
struct TestMsgIn<'a> {
    session: u32,
    iov: &'a [u8],
    bulk_send: Option<BulkHandle>,
    bulk_reply: Option<BulkHandle>,
}

/// START (master mode): run the loop from this server against `endpoints`.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct Start {
    /// Group name.
    pub group: String,
    /// Group members (rank, URI).
    pub members: Vec<(Rank, String)>,
    /// Endpoints (rank, tag).
    pub endpoints: Vec<(Rank, Tag)>,
    /// Send side.
    pub send: MsgSpec,
    /// Reply side.
    pub reply: MsgSpec,
    /// Total RPCs.
    pub reps: u32,
    /// Max in flight.
    pub inflight: u32,
    /// Per-RPC timeout, ms (0 = default).
    pub timeout_ms: u64,
    /// `-a`: client bulk buffers start at an address ending with this byte.
    pub align: Option<u8>,
}
impl Rpc for Start {
    const OPCODE: u32 = opcode(BASE, VERSION, 3);
    type Reply = ();
}

/// STATUS: `None` while running, the result when done.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct Status;
impl Rpc for Status {
    const OPCODE: u32 = opcode(BASE, VERSION, 4);
    type Reply = Option<Result<RunResult, String>>;
}

/// ECHO (daos-rs test extra, index 5): returns `data`; if `bulk` is given the server pulls it and,
/// when `put_back` is given too, pushes the same bytes into `put_back` (byte-exact bulk checks
/// across processes).
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct Echo {
    /// Echoed inline (or overflowed) payload.
    pub data: Vec<u8>,
    /// Client memory to pull.
    pub bulk: Option<BulkHandle>,
    /// Client memory to push the pulled bytes into.
    pub put_back: Option<BulkHandle>,
}
impl Rpc for Echo {
    const OPCODE: u32 = opcode(BASE, VERSION, 5);
    type Reply = Vec<u8>;
}

/// SLEEP (daos-rs test extra, index 6): replies after `ms` milliseconds (timeout tests).
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct Sleep {
    /// Milliseconds.
    pub ms: u64,
}
impl Rpc for Sleep {
    const OPCODE: u32 = opcode(BASE, VERSION, 6);
    type Reply = ();
}

async fn echo(rc: RpcCtx, req: Echo) -> Result<Vec<u8>, RpcError> {
    if let Some(h) = &req.bulk {
        let local = rc
            .bulk_create(vec![DmaBuf::zeroed(h.len() as usize)], Access::ReadWrite)
            .map_err(|e| RpcError::from(&e))?;
        rc.bulk_transfer(BulkOp::Get, h, 0, &local, 0, h.len())
            .await
            .map_err(|e| RpcError::from(&e))?;
        if let Some(p) = &req.put_back {
            if p.len() < h.len() {
                return Err(RpcError::new(
                    Der::Inval,
                    format!("put_back of {} bytes cannot hold {}", p.len(), h.len()),
                ));
            }
            rc.bulk_transfer(BulkOp::Put, p, 0, &local, 0, h.len())
                .await
                .map_err(|e| RpcError::from(&e))?;
        }
    }
    Ok(req.data)
}

struct Session {
    send: MsgSpec,
    reply: MsgSpec,
    /// The IOV reply's bytes (empty unless the reply is IOV), encoded into every reply.
    reply_iov: Vec<u8>,
    /// Set by CLOSE_SESSION (a thread may still hold a cached reference).
    closed: std::sync::atomic::AtomicBool,
    /// Server buffers, used last-in first-out.
    pool: Mutex<Vec<Bulk>>,
    /// One permit per buffer in `pool`.
    avail: tokio::sync::Semaphore,
}

fn sessions() -> &'static Mutex<HashMap<u32, Arc<Session>>> {
    static S: OnceLock<Mutex<HashMap<u32, Arc<Session>>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::default()))
}

enum MasterState {
    Idle,
    Running,
    Done(Result<RunResult, String>),
}

fn master() -> &'static Mutex<MasterState> {
    static M: OnceLock<Mutex<MasterState>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(MasterState::Idle))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn server_buf_len(send: MsgSpec, reply: MsgSpec) -> usize {
    let s = if send.ty == MsgType::BulkGet {
        send.size
    } else {
        0
    };
    let r = if reply.ty == MsgType::BulkPut {
        reply.size
    } else {
        0
    };
    s.max(r) as usize
}

async fn open_session(rc: RpcCtx, req: OpenSession) -> Result<u32, RpcError> {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let len = server_buf_len(req.send, req.reply);
    // The pool holds as many buffers as transfers the provider usefully keeps in progress
    // (`CART_BULK_INFLIGHT`), not one per client slot: RPCs beyond that wait for a buffer. On shm
    // the initiator copies one transfer at a time, so 16 buffers only spread the copies over
    // 16 MiB of cold memory (see `ProviderCaps::bulk_inflight` for the figures).
    let n = req.buf_count.clamp(1, rc.config().bulk_inflight);
    let mut pool = Vec::new();
    if len > 0 {
        for _ in 0..n {
            pool.push(
                rc.bulk_create(vec![DmaBuf::zeroed(len)], Access::ReadWrite)
                    .map_err(|e| RpcError::from(&e))?,
            );
        }
    }
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(sessions()).insert(
        id,
        Arc::new(Session {
            send: req.send,
            reply: req.reply,
            closed: std::sync::atomic::AtomicBool::new(false),
            reply_iov: if req.reply.ty == MsgType::Iov {
                vec![0xA5; req.reply.size as usize]
            } else {
                Vec::new()
            },
            avail: tokio::sync::Semaphore::new(pool.len()),
            pool: Mutex::new(pool),
        }),
    );
    Ok(id)
}

/// The test RPC: answered on the spot (no future) unless its session moves bulk data. It reads
/// the request where it lies in the receive buffer and encodes the reply straight from the
/// session's pattern (no owned request or reply: three allocations less per RPC).
fn test(rc: RpcRef<'_>, body: &[u8]) -> Result<Erased, RpcError> {
    let req: TestMsgIn<'_> = wire::borrow_decode_body(body, TestMsg::MAX_REQ).map_err(|e| {
        RpcError::new(
            Der::Proto,
            format!("undecodable body for opcode {:#010x}: {e}", TestMsg::OPCODE),
        )
    })?;
    // A small inline session is answered from the thread's cached reference to it (no lock and
    // no reference count touched per RPC: ~25 ns of the server path); CLOSE_SESSION marks the
    // session closed, which sends the next RPC for it to the map (and DER_NONEXIST).
    let hit = LAST_SESSION.with(|c| {
        c.borrow().as_ref().and_then(|(id, s)| {
            (*id == req.session && !s.closed.load(Ordering::Acquire))
                .then(|| answer_inline(s, &req))
        })
    });
    if let Some(r) = hit {
        return Ok(Erased::Now(r));
    }
    let sess = lock(sessions()).get(&req.session).cloned();
    let Some(sess) = sess else {
        return Err(RpcError::new(
            Der::Nonexist,
            format!("self-test session {} is not open", req.session),
        ));
    };
    if server_buf_len(sess.send, sess.reply) > 0 {
        let req = TestMsg {
            session: req.session,
            iov: req.iov.to_vec(),
            bulk_send: req.bulk_send,
            bulk_reply: req.bulk_reply,
        };
        let rc = rc.to_owned();
        return Ok(Erased::Later(Box::pin(async move {
            proto::encode_reply(&test_bulk(rc, req, sess).await?, TestMsg::MAX_REPLY)
        })));
    }
    let r = answer_inline(&sess, &req);
    if sess.reply_iov.len() <= 4096 {
        LAST_SESSION.with(|c| *c.borrow_mut() = Some((req.session, sess)));
    }
    Ok(Erased::Now(r))
}

thread_local! {
    /// The last small inline session this thread served (see `test`).
    static LAST_SESSION: std::cell::RefCell<Option<(u32, Arc<Session>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The reply of an inline (no bulk) session: its pattern, or the IOV size error.
fn answer_inline(sess: &Session, req: &TestMsgIn<'_>) -> Result<wire::Framed, RpcError> {
    if req.iov.len() != sess.send.size as usize {
        Err(iov_mismatch(req.iov.len(), sess.send.size))
    } else {
        // An empty slice encodes as an empty Vec<u8>, the reply type.
        proto::encode_reply(&sess.reply_iov.as_slice(), TestMsg::MAX_REPLY)
    }
}

fn iov_mismatch(got: usize, want: u32) -> RpcError {
    RpcError::new(
        Der::Inval,
        format!("IOV of {got} bytes in a session of {want}"),
    )
}

async fn test_bulk(rc: RpcCtx, req: TestMsg, sess: Arc<Session>) -> Result<Vec<u8>, RpcError> {
    let len = server_buf_len(sess.send, sess.reply);
    // A permit per pooled buffer: an RPC beyond the pool waits for one (most recently returned
    // first, so the buffer it gets is still in cache).
    let _permit =
        if len > 0 {
            Some(sess.avail.acquire().await.map_err(|_| {
                RpcError::new(Der::Shutdown, "self-test session buffer pool closed")
            })?)
        } else {
            None
        };
    let buf =
        if len > 0 {
            Some(lock(&sess.pool).pop().ok_or_else(|| {
                RpcError::new(Der::Misc, "self-test session buffer pool is empty")
            })?)
        } else {
            None
        };
    let res = async {
        match sess.send.ty {
            MsgType::BulkGet => {
                let h = req.bulk_send.as_ref().ok_or_else(|| {
                    RpcError::new(Der::Inval, "BULK_GET session but no send bulk handle")
                })?;
                let b = buf
                    .as_ref()
                    .ok_or_else(|| RpcError::new(Der::Inval, "no server buffer"))?;
                // Boxed: the transfer future is large (~1.7 KiB), and keeping it inline made every
                // handler future (boxed by dispatch) a large-bin allocation, which runs glibc's
                // malloc_consolidate: 6 % of an 8 B RPC's CPU time before this.
                Box::pin(rc.bulk_transfer(BulkOp::Get, h, 0, b, 0, u64::from(sess.send.size)))
                    .await
                    .map_err(|e| RpcError::from(&e))?;
            }
            _ if req.iov.len() != sess.send.size as usize => {
                return Err(iov_mismatch(req.iov.len(), sess.send.size));
            }
            _ => {}
        }
        match sess.reply.ty {
            MsgType::BulkPut => {
                let h = req.bulk_reply.as_ref().ok_or_else(|| {
                    RpcError::new(Der::Inval, "BULK_PUT session but no reply bulk handle")
                })?;
                let b = buf
                    .as_ref()
                    .ok_or_else(|| RpcError::new(Der::Inval, "no server buffer"))?;
                Box::pin(rc.bulk_transfer(BulkOp::Put, h, 0, b, 0, u64::from(sess.reply.size)))
                    .await
                    .map_err(|e| RpcError::from(&e))?;
                Ok(Vec::new())
            }
            MsgType::Iov => Ok(vec![0xA5; sess.reply.size as usize]),
            _ => Ok(Vec::new()),
        }
    }
    .await;
    if let Some(b) = buf {
        lock(&sess.pool).push(b);
    }
    res
}

async fn start(rc: RpcCtx, req: Start) -> Result<(), RpcError> {
    let ctx = rc
        .context()
        .ok_or_else(|| RpcError::new(Der::Shutdown, "context closing"))?;
    {
        let mut m = lock(master());
        if matches!(*m, MasterState::Running) {
            return Err(RpcError::new(
                Der::Busy,
                "a self-test run is already in progress on this master",
            ));
        }
        *m = MasterState::Running;
    }
    let group = Group::new(&req.group, req.members);
    let eps: Vec<Endpoint> = req
        .endpoints
        .iter()
        .map(|&(r, t)| Endpoint::new(&group, r, t))
        .collect();
    let timeout = (req.timeout_ms > 0).then(|| Duration::from_millis(req.timeout_ms));
    tokio::spawn(async move {
        let opts = RunOpts {
            timeout,
            align: req.align,
            progress: None,
        };
        let r = run(
            &ctx,
            &eps,
            req.send,
            req.reply,
            req.reps,
            req.inflight,
            opts,
        )
        .await;
        *lock(master()) = MasterState::Done(r.map_err(|e| e.to_string()));
    });
    Ok(())
}

/// The protocol, with its handlers.
pub fn protocol() -> Protocol {
    Protocol::new("self-test", BASE, VERSION)
        .handler(open_session)
        .handler(|_rc: RpcCtx, req: CloseSession| async move {
            if let Some(s) = lock(sessions()).remove(&req.id) {
                s.closed.store(true, Ordering::Release);
            }
            Ok(())
        })
        .handler_raw::<TestMsg, _>(test)
        .handler(start)
        .handler(|_rc: RpcCtx, _req: Status| async move {
            let mut m = lock(master());
            Ok(match std::mem::replace(&mut *m, MasterState::Idle) {
                MasterState::Running => {
                    *m = MasterState::Running;
                    None
                }
                MasterState::Done(r) => Some(r),
                MasterState::Idle => Some(Err(
                    "no self-test run was started on this master".to_string()
                )),
            })
        })
        .handler(echo)
        .handler(|_rc: RpcCtx, req: Sleep| async move {
            tokio::time::sleep(Duration::from_millis(req.ms.min(3_600_000))).await;
            Ok(())
        })
}

/// Client buffers of one in-flight slot: (send handle, reply handle, reply bulk kept alive).
type Slot = (Option<BulkHandle>, Option<BulkHandle>, Option<Bulk>);

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Options of [`run`].
#[derive(Clone, Default)]
pub struct RunOpts {
    /// Per-RPC timeout (None = the context's).
    pub timeout: Option<Duration>,
    /// `-a`: client bulk buffers start at an address whose low byte is this.
    pub align: Option<u8>,
    /// Called with the number of completed RPCs (every 64th and the last).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// Registers a client buffer of `size` bytes whose first byte sits at an address ending with
/// `align` (DAOS `-a`), returning the bulk (kept alive) and the handle of that window.
fn client_buf(
    ctx: &Context,
    data: Vec<u8>,
    size: usize,
    access: Access,
    align: Option<u8>,
) -> Result<(BulkHandle, Bulk), CartError> {
    let Some(a) = align else {
        let b = ctx.bulk_create(vec![DmaBuf::from_vec(data)], access)?;
        return Ok((b.handle(), b));
    };
    let buf = DmaBuf::zeroed(size + 256);
    let off = (usize::from(a).wrapping_sub(buf.as_ptr() as usize)) & 0xff;
    buf.write_at(off, &data).map_err(CartError::Inval)?;
    let b = ctx.bulk_create(vec![buf], access)?;
    Ok((b.handle().sub(off as u64, size as u64)?, b))
}

/// Runs `reps` test RPCs, at most `inflight` at a time, round-robin over `endpoints` (shuffle the
/// list beforehand for `-q`). Endpoints whose session cannot be opened get all their RPCs recorded
/// as failures with that error.
///
/// The loop runs as its own task: a future given to a current-thread runtime's `block_on` is
/// polled only once per `event_interval` (61) task polls while the progress task spins, so a
/// loop run there waited for ~60 progress polls (and a driver `epoll_wait`) between a reply and
/// the next send. Measured (release, tcp;ofi_rxm, 8 B, 1 in flight, strace -c of self_test): 22
/// `epoll_wait` and 16 `sched_yield` per RPC before this.
pub async fn run(
    ctx: &Context,
    endpoints: &[Endpoint],
    send: MsgSpec,
    reply: MsgSpec,
    reps: u32,
    inflight: u32,
    opts: RunOpts,
) -> Result<RunResult, CartError> {
    let (ctx, endpoints) = (ctx.clone(), endpoints.to_vec());
    tokio::spawn(async move { run_loop(&ctx, &endpoints, send, reply, reps, inflight, opts).await })
        .await
        .map_err(|e| CartError::Canceled(format!("self-test task failed: {e}")))?
}

/// The RPC loop of a run: what every slot's callback chain shares.
struct Chains {
    ctx: Context,
    eps: Vec<Endpoint>,
    /// Session id per endpoint, or the error its open got.
    sess: Vec<Result<u32, i32>>,
    iov: Vec<u8>,
    reply: MsgSpec,
    reps: u32,
    timeout: Option<Duration>,
    /// Index of the next RPC to send.
    next: AtomicU32,
    /// RPCs completed.
    done: AtomicU64,
    /// Chains still sending.
    running: AtomicU32,
    /// Each in-flight slot's bulk handles (a chain passes its slot's index along).
    slots: Vec<SlotHandles>,
    /// One cell per RPC index, written once by whoever ends that RPC (no lock between a reply
    /// and the next request).
    samples: Box<[SampleCell]>,
    /// Each endpoint's resolved state (its sessions were opened, so it is resolved), passed to
    /// `send_cb_resolved` so the next request skips the context's endpoint-map lookup.
    resolved: Vec<Option<Arc<crate::context::EpState>>>,
    /// Notified when the last chain stops.
    finished: tokio::sync::Notify,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// A slot's bulk handles (send, reply).
type SlotHandles = (Option<BulkHandle>, Option<BulkHandle>);

/// A sample slot: `meta` = endpoint << 32 | rc as u32, `u64::MAX` while unset.
struct SampleCell {
    latency_ns: AtomicU64,
    meta: AtomicU64,
}

impl SampleCell {
    fn new() -> SampleCell {
        SampleCell {
            latency_ns: AtomicU64::new(0),
            meta: AtomicU64::new(u64::MAX),
        }
    }

    fn get(&self) -> Option<Sample> {
        let meta = self.meta.load(Ordering::Acquire);
        (meta != u64::MAX).then(|| Sample {
            endpoint: (meta >> 32) as u32,
            latency_ns: self.latency_ns.load(Ordering::Relaxed),
            rc: meta as u32 as i32,
        })
    }
}

impl Chains {
    /// Records RPC `i`'s outcome.
    fn record(&self, i: u32, s: Sample) {
        let c = &self.samples[i as usize];
        c.latency_ns.store(s.latency_ns, Ordering::Relaxed);
        c.meta.store(
            (u64::from(s.endpoint) << 32) | u64::from(s.rc as u32),
            Ordering::Release,
        );
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        // Every 64th completion and the last: a progress bar update reads the clock, and this runs
        // between a reply and the next request.
        if let Some(p) = self
            .progress
            .as_ref()
            .filter(|_| d.is_multiple_of(64) || d == u64::from(self.reps))
        {
            p(d);
        }
    }

    /// Sends the slot's next RPC (its callback sends the one after), or ends the chain. RPCs that
    /// cannot be sent are recorded as failures and the loop moves on. `now`: the clock reading
    /// that ended the previous RPC, used as this one's start (one clock read per RPC instead of
    /// two; the recording of the previous sample, tens of ns, counts towards this RPC).
    fn next_rpc(me: &Arc<Chains>, k: usize, now: Option<Instant>) {
        let mut now = now;
        loop {
            let i = me.next.fetch_add(1, Ordering::Relaxed);
            if i >= me.reps {
                if me.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.finished.notify_one();
                }
                return;
            }
            let ei = i as usize % me.eps.len();
            let session = match me.sess[ei] {
                Ok(s) => s,
                Err(rc) => {
                    me.record(
                        i,
                        Sample {
                            endpoint: ei as u32,
                            latency_ns: 0,
                            rc,
                        },
                    );
                    continue;
                }
            };
            let msg = TestMsgRef {
                session,
                iov: &me.iov,
                bulk_send: me.slots[k].0.as_ref(),
                bulk_reply: me.slots[k].1.as_ref(),
            };
            let me2 = me.clone();
            let t = now.take().unwrap_or_else(Instant::now);
            let sent = me.ctx.send_cb_raw::<TestMsg, _, _>(
                me.resolved[ei].as_ref(),
                &me.eps[ei],
                &msg,
                me.timeout,
                move |r| {
                    let end = Instant::now();
                    let latency_ns = end.duration_since(t).as_nanos() as u64;
                    // The reply (a Vec<u8>) read where it lies: only its length is checked.
                    let rc = match r.and_then(|b| {
                        wire::borrow_decode_body::<&[u8]>(b, TestMsg::MAX_REPLY).map_err(|reason| {
                            CartError::Codec {
                                what: "decode reply",
                                reason,
                            }
                        })
                    }) {
                        Ok(body)
                            if me2.reply.ty == MsgType::Iov
                                && body.len() != me2.reply.size as usize =>
                        {
                            -Der::Proto.code()
                        }
                        Ok(_) => 0,
                        Err(e) => e.rc(),
                    };
                    me2.record(
                        i,
                        Sample {
                            endpoint: ei as u32,
                            latency_ns,
                            rc,
                        },
                    );
                    Chains::next_rpc(&me2, k, Some(end));
                },
            );
            match sent {
                Ok(()) => return,
                Err(e) => me.record(
                    i,
                    Sample {
                        endpoint: ei as u32,
                        latency_ns: t.elapsed().as_nanos() as u64,
                        rc: e.rc(),
                    },
                ),
            }
        }
    }
}

async fn run_loop(
    ctx: &Context,
    endpoints: &[Endpoint],
    send: MsgSpec,
    reply: MsgSpec,
    reps: u32,
    inflight: u32,
    opts: RunOpts,
) -> Result<RunResult, CartError> {
    let RunOpts {
        timeout,
        align,
        progress,
    } = opts;
    if endpoints.is_empty() {
        return Err(CartError::Inval(
            "self-test needs at least one endpoint".into(),
        ));
    }
    let inflight = inflight.clamp(1, reps.max(1));
    // Sessions.
    let mut sess: Vec<Result<u32, i32>> = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let r = ctx
            .send_with(
                ep,
                &OpenSession {
                    send,
                    reply,
                    buf_count: inflight,
                },
                timeout,
            )
            .await;
        sess.push(r.map_err(|e| {
            tracing::warn!(rank = ep.rank, tag = ep.tag, error = %e, "self-test session open failed");
            e.rc()
        }));
    }
    // Client buffers, one set per in-flight slot.
    let mut slots: Vec<Slot> = Vec::new();
    // A BULK_GET source is read-only and its content is the same pattern for every RPC, so all
    // slots expose one buffer (as fi_pingpong reuses one): the test then measures the fabric, not
    // how fast the server's copy streams 16 MiB of cold client memory (on shm, 1 MiB BULK_GET at
    // 16 in flight: 8.5-8.9 GB/s with a buffer per slot, 12.8-13.2 GB/s with one). BULK_PUT
    // targets are written, so each slot keeps its own.
    let send_buf = if send.ty == MsgType::BulkGet {
        let n = send.size as usize;
        Some(client_buf(ctx, pattern(n, 7), n, Access::ReadOnly, align)?)
    } else {
        None
    };
    for _ in 0..inflight {
        let sh = send_buf.as_ref().map(|(h, _)| h.clone());
        let (rh, rb) = if reply.ty == MsgType::BulkPut {
            let n = reply.size as usize;
            let (h, b) = client_buf(ctx, vec![0; n], n, Access::ReadWrite, align)?;
            (Some(h), Some(b))
        } else {
            (None, None)
        };
        slots.push((sh, rh, rb));
    }
    let iov = if send.ty == MsgType::Iov {
        pattern(send.size as usize, 7)
    } else {
        Vec::new()
    };
    // One callback chain per in-flight slot: each reply's completion callback, run on the
    // progress loop, records the sample and sends the slot's next RPC (as DAOS's self-test
    // does), so no task wake-up or scheduler pass sits between a reply and the next request.
    let chains = Arc::new(Chains {
        ctx: ctx.clone(),
        eps: endpoints.to_vec(),
        sess,
        iov,
        reply,
        reps,
        timeout,
        next: AtomicU32::new(0),
        done: AtomicU64::new(0),
        running: AtomicU32::new(slots.len() as u32),
        slots: slots.iter().map(|s| (s.0.clone(), s.1.clone())).collect(),
        samples: (0..reps).map(|_| SampleCell::new()).collect(),
        resolved: endpoints.iter().map(|ep| ctx.resolved(ep)).collect(),
        finished: tokio::sync::Notify::new(),
        progress,
    });
    let t0 = Instant::now();
    for k in 0..chains.slots.len() {
        Chains::next_rpc(&chains, k, None);
    }
    chains.finished.notified().await;
    let duration_ns = t0.elapsed().as_nanos() as u64;
    let samples: Vec<Sample> = chains.samples.iter().filter_map(SampleCell::get).collect();
    for (ep, s) in endpoints.iter().zip(chains.sess.iter()) {
        if let Ok(id) = s {
            let _ = ctx.send_with(ep, &CloseSession { id: *id }, timeout).await;
        }
    }
    drop(slots);
    Ok(RunResult {
        samples,
        duration_ns,
    })
}

/// Master mode: asks `master` to run the loop and polls STATUS every `poll` until it is done.
pub async fn run_remote(
    ctx: &Context,
    master: &Endpoint,
    start: Start,
    poll: Duration,
) -> Result<RunResult, CartError> {
    ctx.send(master, &start).await?;
    loop {
        tokio::time::sleep(poll).await;
        match ctx.send(master, &Status).await? {
            None => continue,
            Some(Ok(r)) => return Ok(r),
            Some(Err(msg)) => {
                return Err(CartError::Remote {
                    opcode: Status::OPCODE,
                    rank: master.rank,
                    tag: master.tag,
                    der: Der::Misc,
                    msg,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RemoteMem;

    #[test]
    fn the_borrowing_test_message_encodes_like_the_owned_one() {
        let h = |k| BulkHandle {
            segs: vec![RemoteMem {
                owner: vec![1, 2, 3],
                base: 4096,
                len: 1 << 20,
                key: k,
                access: Access::ReadWrite,
            }],
        };
        for (iov, s, r) in [
            (vec![], None, None),
            (pattern(8, 7), None, None),
            (pattern(300, 1), Some(h(5)), None),
            (vec![], Some(h(6)), Some(h(7))),
        ] {
            let owned = TestMsg {
                session: 42,
                iov: iov.clone(),
                bulk_send: s.clone(),
                bulk_reply: r.clone(),
            };
            let borrowed = TestMsgRef {
                session: 42,
                iov: &iov,
                bulk_send: s.as_ref(),
                bulk_reply: r.as_ref(),
            };
            let a = crate::wire::encode_body("t", &owned, usize::MAX).unwrap();
            let b = crate::wire::encode_body("t", &borrowed, usize::MAX).unwrap();
            assert_eq!(a, b);
            let back: TestMsg = crate::wire::decode_body(&b, usize::MAX).unwrap();
            assert_eq!(
                (&back.iov, &back.bulk_send, &back.bulk_reply),
                (&iov, &s, &r)
            );
            // What the server reads in place, and the tuple the body_decode fuzz target uses.
            let inp: TestMsgIn<'_> = crate::wire::borrow_decode_body(&b, usize::MAX).unwrap();
            assert_eq!(
                (inp.session, inp.iov, &inp.bulk_send, &inp.bulk_reply),
                (42, &iov[..], &s, &r)
            );
            type Tuple<'a> = (u32, &'a [u8], Option<BulkHandle>, Option<BulkHandle>);
            let t: Tuple<'_> = crate::wire::borrow_decode_body(&b, usize::MAX).unwrap();
            assert_eq!((t.0, t.1, t.2, t.3), (42, &iov[..], s, r));
        }
    }
}

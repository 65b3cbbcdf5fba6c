//! The send side of a context: posting a request (pending entry, header, inline body or overflow
//! region, transport send), then either awaiting it (`call`, behind the async API) or completing
//! it with a callback run on the progress loop ([`Context::send_cb`], CaRT's `crt_req_send` with
//! a completion callback).
//!
//! Why callbacks too: an awaited reply travels CQ → oneshot → task wake-up → scheduler → the
//! awaiting future. DAOS's self-test client sends its next RPC from the completion callback of
//! the previous one; doing the same here (shm, 8 B, 1 in flight) cut the round trip from
//! 2.19-2.40 µs to the figures in the crate doc.

use std::sync::Arc;
use std::time::Duration;

use daos_common::Der;
use tokio::sync::oneshot;

use super::{lock, Context, CtxInner, Endpoint, EpState, PendingGuard, PendingRpc, ReplyMsg};
use crate::error::CartError;
use crate::proto::Rpc;
use crate::transport::TransportError;
use crate::wire::{self, Header, Kind};

/// A reply as a completion callback sees it: borrowed from the receive buffer when it came
/// inline (no copy), from the pulled body when it overflowed.
pub(crate) struct ReplyRef<'a> {
    rc: i32,
    body: &'a [u8],
}

/// A completion callback (type-erased), run on the progress loop.
pub(crate) type Callback = Box<dyn for<'a> FnOnce(Result<ReplyRef<'a>, CartError>) + Send>;

/// Who learns how a pending RPC ended.
pub(crate) enum Waiter {
    /// An awaiting [`CtxInner::call`].
    Task(oneshot::Sender<Result<ReplyMsg, CartError>>),
    /// A completion callback.
    Callback(Callback),
}

fn run_callback(cb: Callback, r: Result<ReplyRef<'_>, CartError>, opcode: u32) {
    // A panicking callback must not take the progress loop down with it.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || cb(r))).is_err() {
        tracing::error!(
            opcode = format!("{opcode:#010x}"),
            "an RPC completion callback panicked"
        );
    }
}

impl Waiter {
    fn fire(self, r: Result<ReplyMsg, CartError>, opcode: u32) {
        match self {
            Waiter::Task(tx) => {
                let _ = tx.send(r);
            }
            Waiter::Callback(cb) => match r {
                Ok(m) => run_callback(
                    cb,
                    Ok(ReplyRef {
                        rc: m.rc,
                        body: &m.body,
                    }),
                    opcode,
                ),
                Err(e) => run_callback(cb, Err(e), opcode),
            },
        }
    }
}

impl PendingRpc {
    /// Delivers the outcome. Callers have removed the entry from `pending` and released that lock
    /// (a callback may send again).
    pub(super) fn complete(self, r: Result<ReplyMsg, CartError>) {
        self.waiter.fire(r, self.opcode);
    }

    /// Delivers an inline reply still in the receive buffer: a callback reads it there, an
    /// awaiting task gets a copy.
    pub(super) fn complete_inline(self, rc: i32, body: &[u8]) {
        match self.waiter {
            Waiter::Task(tx) => {
                let _ = tx.send(Ok(ReplyMsg {
                    rc,
                    body: body.to_vec(),
                }));
            }
            Waiter::Callback(cb) => run_callback(cb, Ok(ReplyRef { rc, body }), self.opcode),
        }
    }
}

/// The remote error a reply status carries.
fn remote_error(opcode: u32, rank: u32, tag: u32, rc: i32, body: &[u8]) -> CartError {
    CartError::Remote {
        opcode,
        rank,
        tag,
        der: Der::from_code(rc).unwrap_or(Der::Misc),
        msg: String::from_utf8_lossy(body).into_owned(),
    }
}

/// The reply body, or the remote error its status carries.
fn reply_body(opcode: u32, rank: u32, tag: u32, reply: ReplyMsg) -> Result<Vec<u8>, CartError> {
    if reply.rc != 0 {
        return Err(remote_error(opcode, rank, tag, reply.rc, &reply.body));
    }
    Ok(reply.body)
}

/// Credits of the endpoint and the context quota, held by an RPC completed by callback: with
/// `Some`, one permit of each gate the endpoint state has, given back on drop through that one
/// reference (two owned permits cost a reference per gate: ~25 ns per RPC).
pub(crate) struct Permits(Option<Arc<EpState>>);

impl Drop for Permits {
    fn drop(&mut self) {
        if let Some(st) = self.0.take() {
            if let Some(g) = &st.credits {
                g.give_back();
            }
            if let Some(q) = &st.quota {
                q.give_back();
            }
        }
    }
}

impl CtxInner {
    /// Refuses bodies over the cap and sends on a closed context.
    fn check_send(&self, body: &wire::Framed) -> Result<(), CartError> {
        if body.body_len() > crate::config::MAX_BODY {
            return Err(CartError::TooLarge {
                what: "request body",
                size: body.body_len(),
                cap: crate::config::MAX_BODY,
            });
        }
        if self.shutdown.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(CartError::Canceled("context shut down".into()));
        }
        Ok(())
    }

    /// Posts a request: its pending entry (not for a one-way RPC, `waiter` None), the header, the
    /// body inline or as an overflow region, the send. Returns the RPC id; on failure the entry is
    /// removed without completing it and the waiter is handed back with the error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn post(
        &self,
        st: &EpState,
        ep: &Endpoint,
        opcode: u32,
        body: wire::Framed,
        timeout: Option<Duration>,
        waiter: Option<Waiter>,
    ) -> Result<u64, (CartError, Option<Waiter>)> {
        let oneway = waiter.is_none();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hdr = Header {
            kind: if oneway { Kind::OneWay } else { Kind::Request },
            flags: 0,
            opcode,
            rc: 0,
            rpc_id: id,
            src_rank: self.rank,
            src_tag: self.tag,
            dst_rank: ep.rank,
            dst_tag: ep.tag,
            hlc: self.hlc_now(),
        };
        // Bodies over the inline limit travel as bulk: the server pulls them (Mercury's overflow).
        let mut region = None;
        let msg = if body.body_len() > self.cfg.inline_limit {
            match self.register_body(body) {
                Ok((r, desc)) => {
                    region = Some(r);
                    wire::encode(&hdr, self.t.self_addr(), &[], Some(&desc))
                }
                Err(e) => return Err((e.into(), waiter)),
            }
        } else {
            body.finish(&hdr, self.t.self_addr())
        };
        if let Some(waiter) = waiter {
            let after = timeout.unwrap_or(self.cfg.timeout);
            let sent = self.recent_ns();
            let deadline = sent.saturating_add(u64::try_from(after.as_nanos()).unwrap_or(u64::MAX));
            lock(&self.pending).insert(
                id,
                PendingRpc {
                    waiter,
                    _hold: region.take(),
                    peer: st.peer,
                    group: Arc::as_ptr(&ep.group) as usize,
                    rank: ep.rank,
                    tag: ep.tag,
                    sent,
                    opcode,
                    after,
                    deadline,
                },
            );
            self.next_deadline
                .fetch_min(deadline, std::sync::atomic::Ordering::AcqRel);
        }
        if let Err(e) = self.t.send(st.peer, msg, if oneway { 0 } else { id }) {
            let removed = lock(&self.pending).remove(&id);
            if matches!(e, TransportError::Unreachable { .. }) {
                self.fail_peer(st.peer, &e.to_string());
            }
            let err = CartError::Unreachable {
                rank: ep.rank,
                tag: ep.tag,
                reason: e.to_string(),
            };
            return Err((err, removed.map(|p| p.waiter)));
        }
        self.kick();
        if let Some(region) = region {
            // A one-way body over the inline limit: it must live until the peer pulled it, and no
            // reply will tell us when, so it is kept until it expires.
            tracing::warn!(
                opcode,
                "one-way RPC body over the inline limit: kept until it expires"
            );
            lock(&self.overflow_hold).insert(
                (st.peer, u64::MAX - id),
                (region, std::time::Instant::now()),
            );
        }
        Ok(id)
    }

    /// Sends a request and waits for its reply (the async API).
    pub(super) async fn call(
        self: Arc<Self>,
        ep: &Endpoint,
        opcode: u32,
        body: wire::Framed,
        timeout: Option<Duration>,
        oneway: bool,
    ) -> Result<Vec<u8>, CartError> {
        self.check_send(&body)?;
        let st = self.resolve(ep).await?;
        self.check_dead(st.peer, ep.rank, ep.tag)?;
        let _permit = match &st.credits {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        let _quota = match &self.quota {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        if oneway {
            self.post(&st, ep, opcode, body, timeout, None)
                .map_err(|(e, _)| e)?;
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        let id = self
            .post(&st, ep, opcode, body, timeout, Some(Waiter::Task(tx)))
            .map_err(|(e, _)| e)?;
        let mut guard = PendingGuard {
            inner: &self,
            id,
            armed: true,
        };
        // The progress loop fails the RPC with DER_TIMEDOUT at its deadline (`expire_rpcs`).
        let res = rx.await;
        // Every path that completes an RPC (reply, error, timeout, abort, shutdown) removed it.
        guard.armed = false;
        match res {
            Err(_) => Err(CartError::Canceled("context shut down".into())),
            Ok(r) => reply_body(opcode, ep.rank, ep.tag, r?),
        }
    }

    /// The endpoint's state if it was resolved before.
    fn cached(&self, ep: &Endpoint) -> Option<Arc<EpState>> {
        let key = (Arc::as_ptr(&ep.group) as usize, ep.rank, ep.tag);
        lock(&self.eps).get(&key).cloned()
    }

    /// Both permits if both are free now.
    fn try_permits(&self, st: &Arc<EpState>) -> Option<Permits> {
        if let Some(g) = &st.credits {
            if !g.try_take() {
                return None;
            }
        }
        if let Some(q) = &st.quota {
            if !q.try_take() {
                if let Some(g) = &st.credits {
                    g.give_back();
                }
                return None;
            }
        }
        Some(Permits(Some(st.clone())))
    }

    /// Both permits, waiting for them in turn (cancel-safe: a permit taken before the future
    /// is dropped goes back with its guard).
    async fn permits(&self, st: &Arc<EpState>) -> Permits {
        let credit = match &st.credits {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        let quota = match &st.quota {
            Some(q) => Some(q.acquire().await),
            None => None,
        };
        std::mem::forget(credit);
        std::mem::forget(quota);
        Permits(Some(st.clone()))
    }
}

impl Context {
    /// CaRT's `crt_req_send` with a completion callback: sends RPC `R` with a body encoded from
    /// `body` (an `R`, or a borrowing twin that encodes exactly like one, as for
    /// [`Context::send_as`]) and returns at once; `cb` later gets the decoded reply or the error
    /// (`DER_TIMEDOUT` at the timeout, `DER_UNREACH`, a remote error, `DER_CANCELED` on abort or
    /// shutdown). The flow control (endpoint credits, context quota) and timeouts are those of
    /// [`Context::send`].
    ///
    /// `cb` runs on the progress loop, so it must not block; it may send again (DAOS's self-test
    /// sends its next RPC from there). A panicking callback is logged and does not stop the loop.
    /// An error found before anything was sent (encoding, closed context, a peer known to be
    /// unreachable, a failed send) is returned here and `cb` is dropped without being called.
    /// When the endpoint is not resolved yet or no credit is free, the RPC is sent from a task
    /// once it is, and later errors go to `cb`.
    pub fn send_cb<R, B, F>(
        &self,
        ep: &Endpoint,
        body: &B,
        timeout: Option<Duration>,
        cb: F,
    ) -> Result<(), CartError>
    where
        R: Rpc,
        B: bincode::Encode,
        F: FnOnce(Result<R::Reply, CartError>) + Send + 'static,
    {
        self.send_cb_resolved::<R, B, F>(self.inner.cached(ep).as_ref(), ep, body, timeout, cb)
    }

    /// The endpoint's resolved state, if it was resolved before (an RPC to it was sent): a
    /// caller sending many RPCs to one endpoint keeps it and passes it to
    /// [`Context::send_cb_resolved`], which then skips the endpoint-map lookup.
    pub(crate) fn resolved(&self, ep: &Endpoint) -> Option<Arc<EpState>> {
        self.inner.cached(ep)
    }

    /// [`Context::send_cb`] with the endpoint's state looked up by the caller (`st`: from
    /// [`Context::resolved`] for this `ep`, or None to resolve it).
    pub(crate) fn send_cb_resolved<R, B, F>(
        &self,
        st: Option<&Arc<EpState>>,
        ep: &Endpoint,
        body: &B,
        timeout: Option<Duration>,
        cb: F,
    ) -> Result<(), CartError>
    where
        R: Rpc,
        B: bincode::Encode,
        F: FnOnce(Result<R::Reply, CartError>) + Send + 'static,
    {
        self.send_cb_raw::<R, B, _>(st, ep, body, timeout, move |r| {
            cb(r.and_then(|body| {
                wire::decode_body(body, R::MAX_REPLY).map_err(|reason| CartError::Codec {
                    what: "decode reply",
                    reason,
                })
            }))
        })
    }

    /// [`Context::send_cb_resolved`] handing the callback the reply body undecoded, where it
    /// lies (the receive buffer for an inline reply): a caller that only looks at part of the
    /// reply decodes that part without building an owned reply. A non-zero reply status is
    /// still turned into the remote error.
    pub(crate) fn send_cb_raw<R, B, F>(
        &self,
        st: Option<&Arc<EpState>>,
        ep: &Endpoint,
        body: &B,
        timeout: Option<Duration>,
        cb: F,
    ) -> Result<(), CartError>
    where
        R: Rpc,
        B: bincode::Encode,
        F: for<'a> FnOnce(Result<&'a [u8], CartError>) + Send + 'static,
    {
        let inner = &self.inner;
        let body = wire::Framed::encode("encode request", body, R::MAX_REQ)?;
        inner.check_send(&body)?;
        let (rank, tag) = (ep.rank, ep.tag);
        let complete = move |permits: Permits, r: Result<ReplyRef<'_>, CartError>| {
            // Credits go back first, so a callback that sends again finds one free.
            drop(permits);
            cb(r.and_then(|m| {
                if m.rc != 0 {
                    return Err(remote_error(R::OPCODE, rank, tag, m.rc, m.body));
                }
                Ok(m.body)
            }));
        };
        if let Some(st) = st {
            inner.check_dead(st.peer, rank, tag)?;
            if let Some(permits) = inner.try_permits(st) {
                let waiter = Waiter::Callback(Box::new(move |r| complete(permits, r)));
                return inner
                    .post(st, ep, R::OPCODE, body, timeout, Some(waiter))
                    .map(|_| ())
                    .map_err(|(e, _)| e);
            }
        }
        let (inner, ep) = (inner.clone(), ep.clone());
        // On the context's runtime: the caller may be a thread outside any runtime.
        self.inner.rt.clone().spawn(async move {
            let st = match inner.resolve(&ep).await {
                Ok(st) => st,
                Err(e) => return complete(Permits(None), Err(e)),
            };
            if let Err(e) = inner.check_dead(st.peer, rank, tag) {
                return complete(Permits(None), Err(e));
            }
            let permits = inner.permits(&st).await;
            let waiter = Waiter::Callback(Box::new(move |r| complete(permits, r)));
            if let Err((e, Some(w))) = inner.post(&st, &ep, R::OPCODE, body, timeout, Some(waiter))
            {
                w.fire(Err(e), R::OPCODE);
            }
        });
        Ok(())
    }
}

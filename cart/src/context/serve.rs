//! The receive side of a context: completion events, incoming requests dispatched to protocol
//! handlers, replies (overflowing to bulk above the inline limit), and overflowed bodies pulled and
//! released.

use std::sync::Arc;
use std::time::Instant;

use daos_common::Der;

use super::liveness::PING_OP;
use super::{lock, CtxInner, ReplyMsg, RpcRef, HLC};
use crate::error::{CartError, RpcError};
use crate::proto::Erased;
use crate::transport::{Access, DmaBuf, Event, PeerId, RemoteMem, RmaDir, TransportError};
use crate::wire::{self, Header, Kind};

impl CtxInner {
    pub(super) fn progress_once(self: &Arc<Self>) -> usize {
        let mut total = 0;
        loop {
            let n = match self.t.progress(16, &mut |ev| self.on_event(ev)) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "progress failed");
                    0
                }
            };
            total += n;
            if n < 16 {
                return total;
            }
        }
    }

    fn on_event(self: &Arc<Self>, ev: Event<'_>) {
        match ev {
            Event::Recv(data) => self.on_recv(data),
            Event::SendDone(op, Err(e)) if op & PING_OP != 0 => {
                // A liveness probe could not be sent: the peer is gone.
                self.fail_peer(op & !PING_OP, &e.to_string());
            }
            Event::SendDone(op, Err(e)) if op != 0 => {
                // The peer is unreachable: fail this RPC and every other one pending on that peer
                // (their replies cannot come) instead of leaving them to their timeouts, and make
                // new sends to it fail fast for a while (see `liveness`).
                let peer = lock(&self.pending).get(&op).map(|p| p.peer);
                match (peer, &e) {
                    (Some(peer), TransportError::Unreachable { .. }) => {
                        self.fail_peer(peer, &e.to_string());
                    }
                    (Some(_), _) => {
                        let removed = lock(&self.pending).remove(&op);
                        if let Some(p) = removed {
                            let err = CartError::Unreachable {
                                rank: p.rank,
                                tag: p.tag,
                                reason: e.to_string(),
                            };
                            p.complete(Err(err));
                        }
                    }
                    (None, _) => {}
                }
            }
            Event::SendDone(_, Err(e)) => tracing::debug!(error = %e, "reply/one-way send failed"),
            Event::SendDone(_, Ok(())) => {}
            Event::RmaDone(op, r) => {
                if let Some(tx) = lock(&self.rma_pending).remove(&op) {
                    let _ = tx.send(r);
                }
            }
        }
    }

    pub(super) fn on_recv(self: &Arc<Self>, data: &[u8]) {
        let msg = match wire::decode(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "dropping malformed message");
                return;
            }
        };
        // Every message syncs the clock (DAOS `d_hlc_get_msg`). A sender whose clock is more than
        // the epsilon ahead is refused: its request gets DER_HLC_SYNC, its reply fails the RPC
        // with DER_HLC_SYNC, and the local clock does not jump.
        let skew = HLC.update_at(msg.hdr.hlc, self.coarse_pt()).err();
        if let Some(e) = &skew {
            tracing::warn!(error = %e, src_rank = msg.hdr.src_rank, "HLC skew");
        }
        let hdr = msg.hdr;
        match hdr.kind {
            Kind::Reply if skew.is_some() => {
                let removed = lock(&self.pending).remove(&hdr.rpc_id);
                if let Some(p) = removed {
                    let e = CartError::Remote {
                        opcode: hdr.opcode,
                        rank: p.rank,
                        tag: p.tag,
                        der: Der::HlcSync,
                        msg: skew.map(|e| e.to_string()).unwrap_or_default(),
                    };
                    p.complete(Err(e));
                }
                if let Some(d) = msg.overflow {
                    self.release(&d, hdr.rpc_id);
                }
            }
            Kind::Request if skew.is_some() => match self.t.insert_addr(msg.src_addr) {
                Ok(peer) => self.reply(
                    peer,
                    &hdr,
                    Err(RpcError::new(
                        Der::HlcSync,
                        skew.map(|e| e.to_string()).unwrap_or_default(),
                    )),
                ),
                Err(e) => tracing::warn!(error = %e, "request from an unusable address dropped"),
            },
            Kind::OneWay if skew.is_some() => {}
            Kind::Reply => {
                let removed = lock(&self.pending).remove(&hdr.rpc_id);
                let Some(p) = removed else {
                    tracing::debug!(
                        rpc_id = hdr.rpc_id,
                        "reply for an RPC no longer pending (timed out or dropped)"
                    );
                    if let Some(d) = msg.overflow {
                        self.release(&d, hdr.rpc_id);
                    }
                    return;
                };
                self.heard_from(p.peer);
                match msg.overflow {
                    None => {
                        p.complete_inline(hdr.rc, msg.body);
                    }
                    Some(d) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let r = me.fetch(&d).await;
                            me.release(&d, hdr.rpc_id);
                            p.complete(r.map(|body| ReplyMsg { rc: hdr.rc, body }));
                        });
                    }
                }
            }
            Kind::Request | Kind::OneWay => {
                let peer = match self.t.insert_addr(msg.src_addr) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "request from an unusable address dropped");
                        return;
                    }
                };
                if hdr.dst_rank != self.rank || hdr.dst_tag != self.tag {
                    let e = RpcError::new(
                        Der::BadTarget,
                        format!(
                            "request for rank {} tag {} reached rank {} tag {}",
                            hdr.dst_rank, hdr.dst_tag, self.rank, self.tag
                        ),
                    );
                    self.reply(peer, &hdr, Err(e));
                    return;
                }
                match msg.overflow {
                    None => self.dispatch(peer, hdr, msg.body),
                    Some(d) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            match me.fetch(&d).await {
                                Ok(body) => me.dispatch(peer, hdr, &body),
                                Err(e) => me.reply(
                                    peer,
                                    &hdr,
                                    Err(RpcError::new(
                                        Der::Io,
                                        format!("pulling the request body failed: {e}"),
                                    )),
                                ),
                            }
                        });
                    }
                }
            }
            Kind::Ping => match self.t.insert_addr(msg.src_addr) {
                Ok(peer) => self.pong(peer, &hdr),
                Err(e) => tracing::warn!(error = %e, "ping from an unusable address dropped"),
            },
            Kind::Pong => self.on_pong(hdr.rpc_id),
            Kind::Release => {
                if let Ok(peer) = self.t.insert_addr(msg.src_addr) {
                    lock(&self.overflow_hold).remove(&(peer, hdr.rpc_id));
                }
            }
        }
    }

    pub(super) fn dispatch(self: &Arc<Self>, peer: PeerId, hdr: Header, body: &[u8]) {
        let oneway = hdr.kind == Kind::OneWay;
        let h = self
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(hdr.opcode);
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(opcode = format!("{:#010x}", hdr.opcode), error = %e, "unserved opcode");
                if !oneway {
                    self.reply(peer, &hdr, Err(e));
                }
                return;
            }
        };
        let rc = RpcRef {
            inner: self,
            peer,
            src_rank: hdr.src_rank,
            src_tag: hdr.src_tag,
            opcode: hdr.opcode,
        };
        // A panicking handler must not take the progress loop down: it gets DER_MISC.
        let panicked = || {
            tracing::error!(opcode = hdr.opcode, "RPC handler panicked");
            RpcError::new(Der::Misc, "the RPC handler panicked")
        };
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(rc, body)))
            .unwrap_or_else(|_| Err(panicked()));
        match called {
            Err(e) => {
                if !oneway {
                    self.reply(peer, &hdr, Err(e));
                }
            }
            Ok(Erased::Now(r)) => {
                if !oneway {
                    self.reply(peer, &hdr, r);
                }
            }
            Ok(Erased::Later(mut fut)) => {
                // Fast path: most handlers finish without waiting; poll once here and reply at
                // once instead of a task hop (one more progress poll) before the reply is sent.
                // If it is not ready, the spawned task polls it again with its real waker (a
                // spurious poll with a no-op waker is allowed by the Future contract).
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    fut.as_mut().poll(&mut cx)
                }));
                let r = match polled {
                    Ok(std::task::Poll::Pending) => None,
                    Ok(std::task::Poll::Ready(r)) => Some(r),
                    Err(_) => Some(Err(panicked())),
                };
                if let Some(r) = r {
                    if !oneway {
                        self.reply(peer, &hdr, r);
                    }
                    return;
                }
                let me = self.clone();
                tokio::spawn(async move {
                    let r = fut.await;
                    if !oneway {
                        me.reply(peer, &hdr, r);
                    }
                });
            }
        }
    }

    pub(super) fn reply(&self, peer: PeerId, req: &Header, r: Result<wire::Framed, RpcError>) {
        let (rc, body) = match r {
            Ok(b) => (0, b),
            Err(e) => (-e.der.code(), wire::Framed::raw(e.msg.into_bytes())),
        };
        let h = Header {
            kind: Kind::Reply,
            flags: 0,
            opcode: req.opcode,
            rc,
            rpc_id: req.rpc_id,
            src_rank: self.rank,
            src_tag: self.tag,
            dst_rank: req.src_rank,
            dst_tag: req.src_tag,
            hlc: self.hlc_now(),
        };
        let msg = if body.body_len() > self.cfg.inline_limit {
            match self.register_body(body) {
                Ok((region, desc)) => {
                    let m = wire::encode(&h, self.t.self_addr(), &[], Some(&desc));
                    lock(&self.overflow_hold).insert((peer, req.rpc_id), (region, Instant::now()));
                    m
                }
                Err(e) => {
                    let h = Header {
                        rc: -Der::Nomem.code(),
                        ..h
                    };
                    wire::encode(
                        &h,
                        &[],
                        format!("registering the reply body failed: {e}").as_bytes(),
                        None,
                    )
                }
            }
        } else {
            body.finish(&h, &[])
        };
        if let Err(e) = self.t.send(peer, msg, 0) {
            tracing::warn!(error = %e, "sending a reply failed");
        }
        self.kick();
    }

    /// Pulls an overflowed body.
    pub(super) async fn fetch(self: &Arc<Self>, d: &RemoteMem) -> Result<Vec<u8>, CartError> {
        let peer = self.t.insert_addr(&d.owner)?;
        let len = usize::try_from(d.len).map_err(|_| CartError::Inval("body length".into()))?;
        if len > crate::config::MAX_BODY {
            return Err(CartError::TooLarge {
                what: "overflowed body",
                size: len,
                cap: crate::config::MAX_BODY,
            });
        }
        let local = self.t.register(DmaBuf::zeroed(len), Access::ReadWrite)?;
        self.rma_wait(RmaDir::Get, &local, 0, peer, d, 0, len)
            .await?;
        Ok(local.buf.to_vec())
    }

    /// Tells the owner of an overflowed reply body that it may release it.
    pub(super) fn release(&self, d: &RemoteMem, rpc_id: u64) {
        let Ok(peer) = self.t.insert_addr(&d.owner) else {
            return;
        };
        let h = Header {
            kind: Kind::Release,
            flags: 0,
            opcode: 0,
            rc: 0,
            rpc_id,
            src_rank: self.rank,
            src_tag: self.tag,
            dst_rank: 0,
            dst_tag: 0,
            hlc: HLC.now(),
        };
        let _ = self
            .t
            .send(peer, wire::encode(&h, self.t.self_addr(), &[], None), 0);
        self.kick();
    }
}

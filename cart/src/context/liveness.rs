//! Peer liveness: a peer that dies after our requests reached it never answers, and over
//! `tcp;ofi_rxm` nothing reports that to us (those sends completed), so its RPCs would wait for
//! their timeout (60 s by default). Instead:
//! - a peer with an RPC pending longer than [`PROBE_AFTER`] is probed with a PING message, answered
//!   by the peer's progress loop (not a handler, so a slow handler does not look like a dead
//!   peer); a ping whose send fails, or that is not answered within [`PROBE_TIMEOUT`], declares
//!   the peer unreachable (tcp: the send fails with ECONNREFUSED within ~1 ms; shm: the timeout);
//! - an unreachable peer (that, or any failed send to it) fails every RPC pending on it at once
//!   with `DER_UNREACH` and is marked dead: new sends to it fail fast until a back-off
//!   ([`RETRY_MIN`], doubling to [`RETRY_MAX`]) expires; then one send is let through (the others
//!   keep failing fast), so a restarted server is reachable again; any reply or pong from it
//!   clears the mark.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use daos_common::{Rank, Tag};

use super::{lock, CtxInner, HLC};
use crate::error::CartError;
use crate::transport::PeerId;
use crate::wire::{self, Header, Kind};

/// An RPC pending this long gets its peer probed.
pub(crate) const PROBE_AFTER: Duration = Duration::from_millis(1000);
/// A probe unanswered this long declares the peer unreachable.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(2000);
/// How often the progress loop runs the check.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);
/// First back-off after a peer was found unreachable.
const RETRY_MIN: Duration = Duration::from_millis(500);
/// Back-off cap.
const RETRY_MAX: Duration = Duration::from_secs(8);
/// Send-op ids of pings: this bit set, the peer id below (RMA ops use bit 63, RPC ids are small).
pub(crate) const PING_OP: u64 = 1 << 62;

/// A peer found unreachable.
#[derive(Debug)]
pub(crate) struct Dead {
    /// New sends fail fast until then.
    until: Instant,
    backoff: Duration,
    reason: String,
}

/// An outstanding or answered probe of a peer.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    sent: Option<Instant>,
    answered: bool,
}

/// Liveness state of a context.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    pub(crate) dead: HashMap<PeerId, Dead>,
    pub(crate) probes: HashMap<PeerId, Probe>,
}

impl CtxInner {
    /// Fails fast if `peer` is marked dead and its back-off has not expired.
    pub(super) fn check_dead(&self, peer: PeerId, rank: Rank, tag: Tag) -> Result<(), CartError> {
        if self.dead_count.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let mut l = lock(&self.live);
        let now = Instant::now();
        match l.dead.get_mut(&peer) {
            Some(d) if now < d.until => Err(CartError::Unreachable {
                rank,
                tag,
                reason: format!("{} (peer marked unreachable; retrying later)", d.reason),
            }),
            Some(d) => {
                // Back-off over: let this one send through as the retry; the others keep failing
                // fast until it is answered (mark cleared) or found unreachable (longer back-off).
                d.until = now + d.backoff + PROBE_AFTER + PROBE_TIMEOUT;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// `peer` answered (a reply or a pong): clear its dead mark.
    pub(super) fn heard_from(&self, peer: PeerId) {
        if self.dead_count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut l = lock(&self.live);
        if l.dead.remove(&peer).is_some() {
            self.dead_count.store(l.dead.len(), Ordering::Release);
            tracing::info!(peer, "peer reachable again");
        }
    }

    /// Marks `peer` unreachable and fails every RPC pending on it with `DER_UNREACH`.
    pub(super) fn fail_peer(&self, peer: PeerId, reason: &str) {
        {
            let mut l = lock(&self.live);
            let now = Instant::now();
            let backoff = l
                .dead
                .get(&peer)
                .map_or(RETRY_MIN, |d| (d.backoff * 2).min(RETRY_MAX));
            l.dead.insert(
                peer,
                Dead {
                    until: now + backoff,
                    backoff,
                    reason: reason.to_string(),
                },
            );
            l.probes.remove(&peer);
            self.dead_count.store(l.dead.len(), Ordering::Release);
        }
        let failed: Vec<_> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.peer == peer)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        tracing::warn!(
            peer,
            reason,
            failed = failed.len(),
            "peer unreachable: failing its pending RPCs"
        );
        for p in failed {
            let e = CartError::Unreachable {
                rank: p.rank,
                tag: p.tag,
                reason: reason.to_string(),
            };
            p.complete(Err(e));
        }
    }

    /// A pong for the ping we sent to `peer`.
    pub(super) fn on_pong(&self, peer: PeerId) {
        if let Some(p) = lock(&self.live).probes.get_mut(&peer) {
            p.answered = true;
        }
        self.heard_from(peer);
    }

    /// Answers a ping from `peer`.
    pub(super) fn pong(&self, peer: PeerId, ping: &Header) {
        let h = Header {
            kind: Kind::Pong,
            flags: 0,
            opcode: 0,
            rc: 0,
            rpc_id: ping.rpc_id,
            src_rank: self.rank,
            src_tag: self.tag,
            dst_rank: ping.src_rank,
            dst_tag: ping.src_tag,
            hlc: HLC.now(),
        };
        let m = wire::encode(&h, self.t.self_addr(), &[], None);
        if let Err(e) = self.t.send(peer, m, 0) {
            tracing::debug!(peer, error = %e, "pong send failed");
        }
    }

    /// Run by the progress loop every [`CHECK_EVERY`]: probes peers with long-pending RPCs and
    /// fails those whose probe went unanswered.
    pub(super) fn check_liveness(&self, now: Instant) {
        let now_ns = self.ns_since_epoch(now);
        let oldest: HashMap<PeerId, (u64, Rank, Tag)> = {
            let pending = lock(&self.pending);
            if pending.is_empty() {
                drop(pending);
                let mut l = lock(&self.live);
                if !l.probes.is_empty() {
                    l.probes.clear();
                }
                return;
            }
            let mut m: HashMap<PeerId, (u64, Rank, Tag)> = HashMap::new();
            for p in pending.values() {
                let e = m.entry(p.peer).or_insert((p.sent, p.rank, p.tag));
                if p.sent < e.0 {
                    *e = (p.sent, p.rank, p.tag);
                }
            }
            m
        };
        let mut to_ping = Vec::new();
        let mut to_fail = Vec::new();
        {
            let mut l = lock(&self.live);
            l.probes.retain(|peer, _| oldest.contains_key(peer));
            for (&peer, &(sent, rank, tag)) in &oldest {
                if Duration::from_nanos(now_ns.saturating_sub(sent)) < PROBE_AFTER {
                    continue;
                }
                let pr = l.probes.entry(peer).or_default();
                match pr.sent {
                    Some(t) if !pr.answered && now.duration_since(t) >= PROBE_TIMEOUT => {
                        to_fail.push(peer);
                    }
                    Some(t) if !pr.answered || now.duration_since(t) < PROBE_AFTER => {}
                    _ => {
                        pr.sent = Some(now);
                        pr.answered = false;
                        to_ping.push((peer, rank, tag));
                    }
                }
            }
        }
        for peer in to_fail {
            self.fail_peer(
                peer,
                &format!("no answer to a liveness probe within {PROBE_TIMEOUT:?}"),
            );
        }
        for (peer, rank, tag) in to_ping {
            let h = Header {
                kind: Kind::Ping,
                flags: 0,
                opcode: 0,
                rc: 0,
                rpc_id: peer,
                src_rank: self.rank,
                src_tag: self.tag,
                dst_rank: rank,
                dst_tag: tag,
                hlc: HLC.now(),
            };
            let m = wire::encode(&h, self.t.self_addr(), &[], None);
            tracing::debug!(peer, rank, tag, "probing a peer with long-pending RPCs");
            if let Err(e) = self.t.send(peer, m, PING_OP | peer) {
                self.fail_peer(peer, &e.to_string());
            } else {
                self.kick();
            }
        }
    }
}

//! [`Unacked`]: which objects and containers have logged-but-unacknowledged operations, and the
//! fetches waiting for them.
//!
//! Updates are applied to the index when queued (so conditional checks see them) but a fetch
//! must never return a value whose update may still fail: a fetch that touches an object (or a
//! container) with an operation at an LSN not yet acknowledged is parked with its result until
//! that LSN is durable, then answered; if the flush fails instead, it fails with the same
//! `DER_IO` (the back-out answers it) and a retry reads the durable state. Fetches of data that
//! is already durable are not delayed. Enumerations (synchronous) block until the object's (for
//! `list_objects`: the container's) operations are durable.

use std::collections::{HashMap, VecDeque};

use crate::akey::DiskCopy;
use crate::completion::Completer;
use crate::error::Result;
use crate::types::Fetched;

/// A fetch answered once `lsn` is acknowledged.
pub(crate) struct Parked {
    pub lsn: u64,
    pub out: Vec<Fetched>,
    /// Data-file pieces still to read, with the read sequence number holding their extents.
    pub disk: Option<(u64, Vec<DiskCopy>)>,
    pub done: Completer<Result<Vec<Fetched>>>,
}

#[derive(Default)]
pub(crate) struct Unacked {
    /// (container, object) → LSN of the newest operation on it.
    objects: HashMap<(u128, u128), u64>,
    /// container → LSN of the newest container-wide operation.
    conts: HashMap<u128, u64>,
    /// container → LSN of the newest operation of any kind in it (for object enumeration).
    any: HashMap<u128, u64>,
    /// Marks in LSN order, to forget them once acknowledged.
    order: VecDeque<(u64, u128, Option<u128>)>,
    parked: Vec<Parked>,
}

impl Unacked {
    /// Operation `lsn` touches `oid` of `cont` (or the whole container if `oid` is None).
    pub fn mark(&mut self, lsn: u64, cont: u128, oid: Option<u128>) {
        match oid {
            Some(o) => self.objects.insert((cont, o), lsn),
            None => self.conts.insert(cont, lsn),
        };
        self.any.insert(cont, lsn);
        self.order.push_back((lsn, cont, oid));
    }

    /// The newest unacknowledged LSN a fetch of `oid` in `cont` depends on.
    pub fn pending_for(&self, cont: u128, oid: u128, acked: u64) -> Option<u64> {
        let o = self.objects.get(&(cont, oid)).copied();
        let c = self.conts.get(&cont).copied();
        o.max(c).filter(|l| *l >= acked)
    }

    /// The newest unacknowledged LSN of any operation in `cont`.
    pub fn pending_in(&self, cont: u128, acked: u64) -> Option<u64> {
        self.any.get(&cont).copied().filter(|l| *l >= acked)
    }

    pub fn park(&mut self, p: Parked) {
        self.parked.push(p);
    }

    /// Forgets marks below `acked` and returns the fetches now answerable.
    pub fn acked(&mut self, acked: u64) -> Vec<Parked> {
        while let Some(&(lsn, cont, oid)) = self.order.front() {
            if lsn >= acked {
                break;
            }
            self.order.pop_front();
            if self.any.get(&cont) == Some(&lsn) {
                self.any.remove(&cont);
            }
            match oid {
                Some(o) => {
                    if self.objects.get(&(cont, o)) == Some(&lsn) {
                        self.objects.remove(&(cont, o));
                    }
                }
                None => {
                    if self.conts.get(&cont) == Some(&lsn) {
                        self.conts.remove(&cont);
                    }
                }
            }
        }
        if self.parked.is_empty() {
            return Vec::new();
        }
        let (ready, wait) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.lsn < acked);
        self.parked = wait;
        ready
    }

    /// Every parked fetch (the back-out fails them).
    pub fn take_parked(&mut self) -> Vec<Parked> {
        std::mem::take(&mut self.parked)
    }
}

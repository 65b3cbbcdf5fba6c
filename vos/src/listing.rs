//! Enumeration on [`VosPool`]: objects, dkeys, akeys and array extents, paged by anchors.
//! Each call first waits until the listed object's (for objects: the container's) operations
//! are durable, so a listing never shows a key that a failing flush backs out.

use daos_common::ids::Uuid;

use crate::error::Result;
use crate::pool::{State, VosPool};
use crate::types::*;

impl VosPool {
    /// Objects of a container with data in `epr`; at most `max` per call.
    pub fn list_objects(
        &self,
        cont: Uuid,
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Oid>> {
        self.lock_durable(cont, None)?
            .index
            .list_objects(cont.as_u128(), epr, anchor, max)
    }
    /// Dkeys of an object with data in `epr`; at most `max` per call.
    pub fn list_dkeys(
        &self,
        cont: Uuid,
        oid: Oid,
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Vec<u8>>> {
        self.lock_durable(cont, Some(oid))?
            .index
            .list_dkeys(cont.as_u128(), oid, epr, anchor, max)
    }
    /// Akeys of a dkey with data in `epr`; at most `max` per call.
    pub fn list_akeys(
        &self,
        cont: Uuid,
        oid: Oid,
        dkey: &[u8],
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Vec<u8>>> {
        self.lock_durable(cont, Some(oid))?.index.list_akeys(
            cont.as_u128(),
            oid,
            dkey,
            epr,
            anchor,
            max,
        )
    }
    /// Visible array extents of an akey; at most `max` per call.
    #[allow(clippy::too_many_arguments)]
    pub fn list_recxs(
        &self,
        cont: Uuid,
        oid: Oid,
        dkey: &[u8],
        akey: &[u8],
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<RecxEntry>> {
        self.lock_durable(cont, Some(oid))?.index.list_recxs(
            cont.as_u128(),
            oid,
            dkey,
            akey,
            epr,
            anchor,
            max,
        )
    }

    /// [`VosPool::lock_read`], after waiting (blocking) until every operation on `oid` (every
    /// operation in the container if None) is durable: enumerations never list what a failing
    /// flush could still back out.
    fn lock_durable(
        &self,
        cont: Uuid,
        oid: Option<Oid>,
    ) -> Result<parking_lot::MutexGuard<'_, State>> {
        let mut st = self.lock_read()?;
        loop {
            let acked = st.wal.acked_lsn;
            let wait = match oid {
                Some(o) => st.unacked.pending_for(cont.as_u128(), o.as_u128(), acked),
                None => st.unacked.pending_in(cont.as_u128(), acked),
            };
            if wait.is_none() {
                return Ok(st);
            }
            self.sh.order_cv.wait(&mut st);
            drop(st);
            st = self.lock_read()?;
        }
    }
}

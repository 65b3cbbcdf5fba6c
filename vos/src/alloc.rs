//! Data-file extent allocator (the VEA role): first-fit over 4 KiB blocks. Its state is not
//! persisted: it is rebuilt from the index at open, since every live extent is referenced there.

use std::collections::BTreeMap;

use crate::uring::align_up;

#[derive(Debug)]
pub struct Allocator {
    total: u64,
    /// Free extents: offset → length, coalesced.
    free: BTreeMap<u64, u64>,
    used: u64,
}

impl Allocator {
    /// An allocator over `[0, total)` with the given extents already in use.
    pub fn new(total: u64, mut used: Vec<(u64, u64)>) -> Allocator {
        let total = total / 4096 * 4096;
        used.sort_unstable();
        let mut free = BTreeMap::new();
        let mut pos = 0u64;
        let mut n = 0u64;
        for (off, len) in used {
            if off > pos {
                free.insert(pos, off - pos);
            }
            pos = pos.max(off + len);
            n += len;
        }
        if pos < total {
            free.insert(pos, total - pos);
        }
        Allocator {
            total,
            free,
            used: n,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn used(&self) -> u64 {
        self.used
    }
    pub fn free_bytes(&self) -> u64 {
        self.total - self.used
    }

    /// Reserves `len` bytes (rounded up to 4 KiB); `None` if no free extent is large enough.
    pub fn reserve(&mut self, len: u64) -> Option<u64> {
        let len = align_up(len).max(4096);
        let (&off, &flen) = self.free.iter().find(|(_, l)| **l >= len)?;
        self.free.remove(&off);
        if flen > len {
            self.free.insert(off + len, flen - len);
        }
        self.used += len;
        Some(off)
    }

    /// Returns `[off, off+len)` to the free list, merging neighbours.
    pub fn release(&mut self, off: u64, len: u64) {
        let len = align_up(len).max(4096);
        self.used -= len;
        let mut start = off;
        let mut end = off + len;
        if let Some((&po, &pl)) = self.free.range(..off).next_back() {
            if po + pl == off {
                self.free.remove(&po);
                start = po;
            }
        }
        if let Some(&nl) = self.free.get(&end) {
            self.free.remove(&end);
            end += nl;
        }
        self.free.insert(start, end - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_coalesces_and_runs_out() {
        let mut a = Allocator::new(16384, vec![]);
        let x = a.reserve(4096).unwrap();
        let y = a.reserve(8000).unwrap();
        assert_eq!(a.used(), 12288);
        assert!(a.reserve(8192).is_none());
        a.release(x, 4096);
        a.release(y, 8000);
        assert_eq!(a.reserve(16384), Some(0));
    }

    #[test]
    fn rebuild_from_used_extents() {
        let a = Allocator::new(40960, vec![(8192, 4096), (0, 4096)]);
        assert_eq!(a.used(), 8192);
        assert_eq!(a.free_bytes(), 32768);
    }
}

//! [`DmaBuf`]: a fixed heap allocation that a NIC (or a peer through RMA) may read and write while
//! Rust code also holds it. It never moves or reallocates, so its address can be registered.

use std::ptr::NonNull;

/// A fixed-size, shareable byte buffer whose address is stable (registered memory lives in one).
///
/// Accesses go through raw copies with bounds checks. The NIC may write into a buffer registered
/// read-write while a remote PUT or a local GET is in flight; callers read it only after that
/// operation's completion (the bulk layer enforces this by awaiting the completion first).
pub struct DmaBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: DmaBuf owns its allocation exclusively (like Box<[u8]>); the raw pointer is only a stable
// handle to it, so moving it to another thread is as safe as moving a Box.
unsafe impl Send for DmaBuf {}
// SAFETY: shared access only performs bounds-checked copies; concurrent overlapping writes are
// prevented by the callers' protocol (one in-flight transfer per byte range), as with DMA memory.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// A zero-filled buffer of `len` bytes (at least one byte is allocated so it can be registered).
    pub fn zeroed(len: usize) -> DmaBuf {
        DmaBuf::from_vec(vec![0u8; len])
    }

    /// Takes ownership of `v`'s bytes without copying.
    pub fn from_vec(mut v: Vec<u8>) -> DmaBuf {
        let len = v.len();
        if v.is_empty() {
            v.push(0);
        }
        let b = v.into_boxed_slice();
        let cap = b.len();
        let raw = Box::into_raw(b) as *mut u8;
        DmaBuf {
            // SAFETY: Box::into_raw never returns null.
            ptr: unsafe { NonNull::new_unchecked(raw) },
            len,
            cap,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start address (what gets registered).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes registered (at least 1, so zero-length buffers can still be registered).
    pub(crate) fn reg_len(&self) -> usize {
        self.cap
    }

    fn check(&self, off: usize, len: usize) -> Result<(), String> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(format!(
                "range {off}+{len} outside buffer of {} bytes",
                self.len
            )),
        }
    }

    /// Copies `dst.len()` bytes starting at `off` out of the buffer.
    pub fn read_at(&self, off: usize, dst: &mut [u8]) -> Result<(), String> {
        self.check(off, dst.len())?;
        // SAFETY: bounds checked above; dst is a distinct Rust slice so the ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }

    /// Copies `src` into the buffer at `off`.
    pub fn write_at(&self, off: usize, src: &[u8]) -> Result<(), String> {
        self.check(off, src.len())?;
        // SAFETY: bounds checked above; src is a distinct Rust slice.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len())
        };
        Ok(())
    }

    /// Copies `len` bytes from `src[src_off..]` to `self[off..]` (memmove semantics).
    pub fn copy_from(
        &self,
        off: usize,
        src: &DmaBuf,
        src_off: usize,
        len: usize,
    ) -> Result<(), String> {
        self.check(off, len)?;
        src.check(src_off, len)?;
        // SAFETY: both ranges are in bounds of live allocations; ptr::copy tolerates overlap.
        unsafe {
            std::ptr::copy(
                src.ptr.as_ptr().add(src_off),
                self.ptr.as_ptr().add(off),
                len,
            )
        };
        Ok(())
    }

    /// A copy of the whole contents.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        let _ = self.read_at(0, &mut v);
        v
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.cap);
        // SAFETY: ptr/cap came from Box::into_raw of a Box<[u8]> of exactly cap bytes, freed once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

impl std::fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DmaBuf({} bytes @ {:p})", self.len, self.ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let b = DmaBuf::from_vec(vec![1, 2, 3, 4]);
        let mut out = [0u8; 2];
        b.read_at(2, &mut out).unwrap();
        assert_eq!(out, [3, 4]);
        assert!(b.read_at(3, &mut out).is_err());
        assert!(b.write_at(usize::MAX, &[1]).is_err());
        let z = DmaBuf::zeroed(0);
        assert!(z.is_empty());
        assert_eq!(z.reg_len(), 1);
        let c = DmaBuf::zeroed(4);
        c.copy_from(1, &b, 0, 3).unwrap();
        assert_eq!(c.to_vec(), vec![0, 1, 2, 3]);
    }
}

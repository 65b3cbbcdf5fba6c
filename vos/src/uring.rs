//! The crate's only `unsafe` code: 4 KiB-aligned buffers for O_DIRECT and a blocking batch API over
//! `io_uring` (submit a list of reads/writes/fdatasyncs, return when every one has completed).
//!
//! Safety argument in one sentence: [`Ring::run`] borrows every buffer for the whole call and does
//! not return until the kernel has posted a completion for every submitted entry, so the kernel
//! never touches memory after the borrow ends.

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

use io_uring::{opcode, types, IoUring};

/// Block size for O_DIRECT alignment (offsets, lengths and buffer addresses).
pub const BLOCK: usize = 4096;

/// Rounds `n` up to a multiple of [`BLOCK`].
pub const fn align_up(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// A zero-initialised heap buffer whose address and length are multiples of 4 KiB.
pub struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively (like Vec<u8>); moving it or sharing `&` across
// threads is as safe as for Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; `&AlignedBuf` only gives `&[u8]`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `len` bytes (rounded up to 4 KiB, minimum 4 KiB).
    pub fn zeroed(len: usize) -> AlignedBuf {
        let len = (align_up(len as u64) as usize).max(BLOCK);
        let layout = Layout::from_size_align(len, BLOCK).expect("aligned layout");
        // SAFETY: layout has non-zero size (>= BLOCK) and a power-of-two alignment.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr =
            std::ptr::NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len }
    }

    /// A buffer holding `data` followed by zero padding to 4 KiB. Only the padding is zeroed:
    /// for 1 MiB updates, zeroing the whole buffer before the copy was 15 % of the submitting
    /// thread's CPU time.
    pub fn from_slice(data: &[u8]) -> AlignedBuf {
        AlignedBuf::from_parts(&[data])
    }

    /// A buffer holding `parts` one after the other, then zero padding to 4 KiB (only the
    /// padding is zeroed).
    pub fn from_parts(parts: &[&[u8]]) -> AlignedBuf {
        let used: usize = parts.iter().map(|p| p.len()).sum();
        let len = (align_up(used as u64) as usize).max(BLOCK);
        let layout = Layout::from_size_align(len, BLOCK).expect("aligned layout");
        // SAFETY: layout has non-zero size (>= BLOCK) and a power-of-two alignment.
        let raw = unsafe { alloc(layout) };
        let ptr =
            std::ptr::NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        let mut at = 0;
        for p in parts {
            // SAFETY: the allocation holds `len` >= `used` bytes, `at + p.len()` <= `used`, and
            // it does not overlap `p` (freshly allocated).
            unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), ptr.as_ptr().add(at), p.len()) };
            at += p.len();
        }
        // SAFETY: `[used, len)` lies in the allocation. With the copies above every byte is now
        // written once, so the buffer is initialised before the AlignedBuf (whose slices assume
        // initialised bytes) exists.
        unsafe { std::ptr::write_bytes(ptr.as_ptr().add(used), 0, len - used) };
        AlignedBuf { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is a live allocation of `len` initialised (zeroed) bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len, BLOCK).expect("aligned layout");
        // SAFETY: ptr was allocated in `zeroed` with exactly this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// One I/O in a batch. Offsets and lengths must be 4 KiB multiples for O_DIRECT files.
pub enum IoOp<'a> {
    Write {
        file: &'a File,
        buf: &'a [u8],
        off: u64,
    },
    /// A write that is durable when it completes (`RWF_DSYNC`: FUA or a device flush), saving
    /// the separate fdatasync round trip.
    WriteDsync {
        file: &'a File,
        buf: &'a [u8],
        off: u64,
    },
    Read {
        file: &'a File,
        buf: &'a mut [u8],
        off: u64,
    },
    Fdatasync {
        file: &'a File,
    },
}

/// An io_uring instance, or the synchronous fallback when the kernel refuses io_uring
/// (seccomp-filtered containers). Both give the same results.
pub struct Ring {
    ring: Option<IoUring>,
    depth: usize,
}

impl Ring {
    /// A ring with `depth` submission entries; falls back to pread/pwrite if io_uring is unavailable.
    pub fn new(depth: u32) -> Ring {
        match IoUring::new(depth) {
            Ok(ring) => Ring {
                ring: Some(ring),
                depth: depth as usize,
            },
            Err(e) => {
                tracing::warn!(error = %e, "io_uring unavailable, using synchronous pread/pwrite");
                Ring {
                    ring: None,
                    depth: depth as usize,
                }
            }
        }
    }

    /// True if the kernel ring is in use.
    pub fn is_uring(&self) -> bool {
        self.ring.is_some()
    }

    /// Runs every op (reads/writes concurrently; each `Fdatasync` is a barrier that runs after
    /// everything before it has completed). Returns one result per op: bytes transferred, or 0
    /// for fdatasync. A short transfer is reported as an `UnexpectedEof`/`WriteZero` error.
    pub fn run(&mut self, ops: &mut [IoOp<'_>]) -> Vec<io::Result<usize>> {
        let mut results: Vec<io::Result<usize>> = Vec::with_capacity(ops.len());
        let mut start = 0;
        while start < ops.len() {
            // A group is everything up to (and including) the next fdatasync, run with the sync last.
            let mut end = start;
            while end < ops.len() && !matches!(ops[end], IoOp::Fdatasync { .. }) {
                end += 1;
            }
            results.extend(self.run_group(&mut ops[start..end]));
            if end < ops.len() {
                let r = match &ops[end] {
                    IoOp::Fdatasync { file } => self.fdatasync(file),
                    _ => unreachable!("loop stops only at Fdatasync"),
                };
                results.push(r.map(|_| 0));
                end += 1;
            }
            start = end;
        }
        results
    }

    /// fdatasync as a direct syscall from the calling (flusher) thread. io_uring always punts
    /// fsync to an io-wq kernel worker; with the 2 cores busy, that extra thread hop cost 1.5-2.5x
    /// in update throughput here (3 of 3 back-to-back pairs, see README), so only reads and
    /// writes go through the ring.
    fn fdatasync(&mut self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn run_group(&mut self, ops: &mut [IoOp<'_>]) -> Vec<io::Result<usize>> {
        let mut results: Vec<Option<io::Result<usize>>> = (0..ops.len()).map(|_| None).collect();
        let Some(ring) = self.ring.as_mut() else {
            for (i, op) in ops.iter_mut().enumerate() {
                results[i] = Some(match op {
                    IoOp::Write { file, buf, off } => {
                        file.write_all_at(buf, *off).map(|_| buf.len())
                    }
                    IoOp::WriteDsync { file, buf, off } => file
                        .write_all_at(buf, *off)
                        .and_then(|_| file.sync_data())
                        .map(|_| buf.len()),
                    IoOp::Read { file, buf, off } => {
                        file.read_exact_at(buf, *off).map(|_| buf.len())
                    }
                    IoOp::Fdatasync { file } => file.sync_data().map(|_| 0),
                });
            }
            return results.into_iter().map(|r| r.expect("set")).collect();
        };
        let mut next = 0usize;
        let mut in_flight = 0usize;
        while next < ops.len() || in_flight > 0 {
            // Fill the submission queue.
            while next < ops.len() && in_flight < self.depth {
                let entry = match &mut ops[next] {
                    IoOp::Write { file, buf, off } => opcode::Write::new(
                        types::Fd(file.as_raw_fd()),
                        buf.as_ptr(),
                        buf.len() as u32,
                    )
                    .offset(*off)
                    .build(),
                    IoOp::WriteDsync { file, buf, off } => opcode::Write::new(
                        types::Fd(file.as_raw_fd()),
                        buf.as_ptr(),
                        buf.len() as u32,
                    )
                    .offset(*off)
                    .rw_flags(libc::RWF_DSYNC)
                    .build(),
                    IoOp::Read { file, buf, off } => opcode::Read::new(
                        types::Fd(file.as_raw_fd()),
                        buf.as_mut_ptr(),
                        buf.len() as u32,
                    )
                    .offset(*off)
                    .build(),
                    IoOp::Fdatasync { file } => opcode::Fsync::new(types::Fd(file.as_raw_fd()))
                        .flags(types::FsyncFlags::DATASYNC)
                        .build(),
                }
                .user_data(next as u64);
                // SAFETY: the buffer and fd of ops[next] are borrowed by `ops` for this whole call,
                // and this function only returns after every pushed entry's completion is reaped
                // (in_flight reaches 0), so the kernel never accesses them after the borrow ends.
                if unsafe { ring.submission().push(&entry) }.is_err() {
                    break;
                }
                next += 1;
                in_flight += 1;
            }
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if in_flight > 0 && e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    // Nothing more can be submitted; fail the unsubmitted ops, keep reaping.
                    let msg = e.to_string();
                    for r in results.iter_mut().skip(next) {
                        *r = Some(Err(io::Error::other(msg.clone())));
                    }
                    next = ops.len();
                    if in_flight == 0 {
                        break;
                    }
                }
            }
            for cqe in ring.completion() {
                let i = cqe.user_data() as usize;
                let r = cqe.result();
                in_flight -= 1;
                let want = match &ops[i] {
                    IoOp::Write { buf, .. } | IoOp::WriteDsync { buf, .. } => buf.len(),
                    IoOp::Read { buf, .. } => buf.len(),
                    IoOp::Fdatasync { .. } => 0,
                };
                results[i] = Some(if r < 0 {
                    Err(io::Error::from_raw_os_error(-r))
                } else if (r as usize) < want {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short transfer {r} of {want}"),
                    ))
                } else {
                    Ok(r as usize)
                });
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not submitted"))))
            .collect()
    }
}

/// Reserves the blocks of `[0, len)` of `file` (fallocate: unwritten extents, which read as
/// zeros), so later writes there cannot fail for lack of space. With `keep_size` the file's size
/// is left as it is (blocks reserved beyond the end), else it becomes at least `len`. ENOSPC if
/// the file system cannot hold it; EOPNOTSUPP on file systems without fallocate.
pub fn reserve(file: &File, len: u64, keep_size: bool) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let mode = if keep_size {
        libc::FALLOC_FL_KEEP_SIZE
    } else {
        0
    };
    // SAFETY: fallocate only reads its integer arguments; the fd is valid for the borrow of `file`.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, 0, len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens `path` for O_DIRECT reading and writing, creating it if asked.
pub fn open_direct(path: &std::path::Path, create: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_slice_copies_the_data_and_zeroes_only_the_padding() {
        for n in [0usize, 1, 4095, 4096, 4097, 5000, 1 << 20, (1 << 20) + 3] {
            // Dirty the allocator's free memory first, so unzeroed padding would show.
            let len = (align_up(n as u64) as usize).max(BLOCK);
            for _ in 0..4 {
                drop(std::hint::black_box(vec![0xAAu8; len + 64]));
            }
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
            let b = AlignedBuf::from_slice(&data);
            assert_eq!(
                b.len(),
                (align_up(n as u64) as usize).max(BLOCK),
                "len for {n}"
            );
            assert_eq!(b.as_slice().as_ptr() as usize % BLOCK, 0);
            assert_eq!(&b.as_slice()[..n], &data[..], "data for {n}");
            assert!(b.as_slice()[n..].iter().all(|&x| x == 0), "padding for {n}");
            let (a, c) = data.split_at(n / 3);
            let p = AlignedBuf::from_parts(&[a, &[], c]);
            assert_eq!(p.len(), b.len());
            assert_eq!(p.as_slice(), b.as_slice(), "parts for {n}");
        }
    }

    #[test]
    fn write_read_roundtrip_on_ext4_with_o_direct() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let p = dir.path().join("f");
        let f = open_direct(&p, true).unwrap();
        let mut ring = Ring::new(8);
        let a = AlignedBuf::from_slice(&[7u8; 5000]);
        let mut ops = vec![
            IoOp::Write {
                file: &f,
                buf: a.as_slice(),
                off: 4096,
            },
            IoOp::Fdatasync { file: &f },
        ];
        let r = ring.run(&mut ops);
        assert_eq!(r.len(), 2);
        assert_eq!(*r[0].as_ref().unwrap(), 8192);
        let mut b = AlignedBuf::zeroed(8192);
        let r = ring.run(&mut [IoOp::Read {
            file: &f,
            buf: b.as_mut_slice(),
            off: 4096,
        }]);
        assert!(r[0].is_ok());
        assert_eq!(&b.as_slice()[..5000], &[7u8; 5000][..]);
        assert_eq!(&b.as_slice()[5000..], &vec![0u8; 8192 - 5000][..]);
    }

    #[test]
    fn unaligned_o_direct_write_is_rejected_on_ext4() {
        // Documents why every buffer goes through AlignedBuf: ext4 refuses misaligned O_DIRECT.
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let p = dir.path().join("f");
        let f = open_direct(&p, true).unwrap();
        let mut ring = Ring::new(8);
        let a = AlignedBuf::zeroed(8192);
        let r = ring.run(&mut [IoOp::Write {
            file: &f,
            buf: &a.as_slice()[1..4097],
            off: 0,
        }]);
        assert!(
            r[0].is_err(),
            "misaligned O_DIRECT write unexpectedly succeeded"
        );
    }
}

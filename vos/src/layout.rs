//! Where a pool's pieces live on the bdev tier.
//!
//! - class `file`: a directory with `pool.hdr`, `data`, `ckpt.<gen>`, `wal.<gen>` (see README).
//! - class `kdev`: one block device (or any file of fixed size), all opened O_DIRECT:
//!
//! ```text
//! [0, 4K)                 superblock: magic "VKDV" u32, version u16, pad u16, dev_size u64,
//!                         slot_len u64, wal_off u64, wal_len u64, data_off u64, data_len u64,
//!                         scm_size u64, inline_threshold u64, crc32c of bytes 0..72 (u32)
//! [4K, 4K+slot)           checkpoint slot 0 (generations with gen % 2 == 0)
//! [4K+slot, 4K+2*slot)    checkpoint slot 1
//! [wal_off, +wal_len)     WAL region, reused by every generation (batch headers carry the gen)
//! [data_off, +data_len)   data region (value extents)
//! ```
//! A checkpoint of generation g+1 goes to the slot not holding generation g, so a torn
//! checkpoint write leaves g and its (not yet reused) WAL intact. The WAL region is reused for
//! generation g+1 only after checkpoint g+1 is durable.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ckpt::{self, PoolHeader};
use crate::config::{BdevClass, PoolConfig};
use crate::error::{Result, VosError};
use crate::index::Index;
use crate::uring::{align_up, open_direct, AlignedBuf, IoOp, Ring, BLOCK};

const SB_MAGIC: u32 = u32::from_le_bytes(*b"VKDV");

/// Fixed geometry of a kdev pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub dev_size: u64,
    pub slot_len: u64,
    pub wal_off: u64,
    pub wal_len: u64,
    pub data_off: u64,
    pub data_len: u64,
    pub scm_size: u64,
    pub inline_threshold: u64,
}

impl Superblock {
    /// Splits a device: a quarter for the WAL (at most checkpoint threshold + 64 MiB), an
    /// eighth per checkpoint slot, the rest for data.
    fn plan(dev_size: u64, cfg: &PoolConfig) -> Result<Superblock> {
        let blocks = |n: u64| n / BLOCK as u64 * BLOCK as u64;
        if dev_size < (16 << 20) {
            return Err(VosError::Invalid(format!(
                "kdev of {dev_size} bytes is below the 16 MiB minimum"
            )));
        }
        let slot_len = blocks(dev_size / 8);
        let wal_len = blocks((dev_size / 4).min(cfg.wal_checkpoint_bytes.saturating_add(64 << 20)));
        let wal_off = BLOCK as u64 + 2 * slot_len;
        let data_off = wal_off + wal_len;
        Ok(Superblock {
            dev_size,
            slot_len,
            wal_off,
            wal_len,
            data_off,
            data_len: blocks(dev_size - data_off),
            scm_size: cfg.scm_size,
            inline_threshold: cfg.inline_threshold as u64,
        })
    }

    fn encode(&self) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(BLOCK);
        let s = b.as_mut_slice();
        s[0..4].copy_from_slice(&SB_MAGIC.to_le_bytes());
        s[4..6].copy_from_slice(&1u16.to_le_bytes());
        for (i, v) in [
            self.dev_size,
            self.slot_len,
            self.wal_off,
            self.wal_len,
            self.data_off,
            self.data_len,
            self.scm_size,
            self.inline_threshold,
        ]
        .iter()
        .enumerate()
        {
            s[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let c = crc32c::crc32c(&s[0..72]);
        s[72..76].copy_from_slice(&c.to_le_bytes());
        b
    }

    fn decode(path: &Path, s: &[u8]) -> Result<Superblock> {
        let le64 = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
        if u32::from_le_bytes(s[0..4].try_into().expect("4")) != SB_MAGIC {
            return Err(VosError::Pool {
                path: path.into(),
                reason: "no vos pool on this device (bad superblock magic); create it first".into(),
            });
        }
        if crc32c::crc32c(&s[0..72]) != u32::from_le_bytes(s[72..76].try_into().expect("4")) {
            return Err(VosError::corrupt(path, "kdev superblock checksum mismatch"));
        }
        Ok(Superblock {
            dev_size: le64(8),
            slot_len: le64(16),
            wal_off: le64(24),
            wal_len: le64(32),
            data_off: le64(40),
            data_len: le64(48),
            scm_size: le64(56),
            inline_threshold: le64(64),
        })
    }
}

/// An open kdev.
pub struct Dev {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub sb: Superblock,
}

/// The bdev-tier layout of an open pool.
pub enum Layout {
    Dir { dir: PathBuf },
    Dev(Arc<Dev>),
}

fn dev_size(f: &mut File, path: &Path) -> Result<u64> {
    // SEEK_END gives the size of block devices too (their metadata length is 0).
    f.seek(SeekFrom::End(0)).map_err(|e| VosError::io(path, e))
}

fn run(ring: &mut Ring, path: &Path, ops: &mut [IoOp<'_>]) -> Result<()> {
    for r in ring.run(ops) {
        r.map_err(|e| VosError::io(path, e))?;
    }
    Ok(())
}

fn read_at(file: &File, path: &Path, off: u64, len: u64) -> Result<AlignedBuf> {
    let mut b = AlignedBuf::zeroed(len as usize);
    let mut ring = Ring::new(4);
    run(
        &mut ring,
        path,
        &mut [IoOp::Read {
            file,
            buf: b.as_mut_slice(),
            off,
        }],
    )?;
    Ok(b)
}

impl Layout {
    /// Formats the bdev tier for a new pool.
    pub fn create(cfg: &PoolConfig) -> Result<()> {
        let body = ckpt::encode_index(&Index::default());
        match cfg.bdev_class {
            BdevClass::Kdev => {
                let path = &cfg.bdev_path;
                let mut f = open_direct(path, false).map_err(|e| VosError::io(path, e))?;
                let size = dev_size(&mut f, path)?;
                let head = read_at(&f, path, 0, BLOCK as u64)?;
                if Superblock::decode(path, head.as_slice()).is_ok() {
                    return Err(VosError::Pool {
                        path: path.clone(),
                        reason: "a pool already exists on this device".into(),
                    });
                }
                let sb = Superblock::plan(size, cfg)?;
                let dev = Dev {
                    path: path.clone(),
                    file: Arc::new(f),
                    sb,
                };
                // Stale WAL bytes from an earlier use of the device must not look like batches.
                let zeros = AlignedBuf::zeroed((8 << 20).min(sb.wal_len as usize));
                let mut ring = Ring::new(16);
                let mut off = 0;
                while off < sb.wal_len {
                    let n = (zeros.len() as u64).min(sb.wal_len - off) as usize;
                    run(
                        &mut ring,
                        path,
                        &mut [IoOp::Write {
                            file: &dev.file,
                            buf: &zeros.as_slice()[..n],
                            off: sb.wal_off + off,
                        }],
                    )?;
                    off += n as u64;
                }
                Layout::write_slot(&dev, 1, 1, 0, &body)?;
                let other = AlignedBuf::zeroed(BLOCK); // invalidate slot 0
                let sbuf = sb.encode();
                run(
                    &mut ring,
                    path,
                    &mut [
                        IoOp::Write {
                            file: &dev.file,
                            buf: other.as_slice(),
                            off: BLOCK as u64,
                        },
                        IoOp::Fdatasync { file: &dev.file },
                        IoOp::Write {
                            file: &dev.file,
                            buf: sbuf.as_slice(),
                            off: 0,
                        },
                        IoOp::Fdatasync { file: &dev.file },
                    ],
                )
            }
            _ => {
                let dir = &cfg.bdev_path;
                std::fs::create_dir_all(dir).map_err(|e| VosError::io(dir, e))?;
                let hdr_path = dir.join("pool.hdr");
                if hdr_path.exists() {
                    return Err(VosError::Pool {
                        path: dir.clone(),
                        reason: "a pool already exists here".into(),
                    });
                }
                let data_path = dir.join("data");
                let size = cfg.data_size / 4096 * 4096;
                let f = File::create(&data_path).map_err(|e| VosError::io(&data_path, e))?;
                // Reserve the whole data file now (unwritten extents: no zeroing), so a full
                // file system is a NOSPACE error here, at create, and never a failed value write
                // later (which would turn the pool read-only).
                match crate::uring::reserve(&f, size, false) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                        f.set_len(size).map_err(|e| VosError::io(&data_path, e))?;
                    }
                    Err(e) => {
                        drop(f);
                        let _ = std::fs::remove_file(&data_path);
                        return Err(VosError::io(&data_path, e));
                    }
                }
                f.sync_all().map_err(|e| VosError::io(&data_path, e))?;
                drop(f);
                if cfg.preallocate_data {
                    preallocate(&data_path, size)?;
                }
                ckpt::write_ckpt(dir, 1, 1, 0, &body)?;
                let hdr = PoolHeader {
                    data_size: size,
                    scm_size: cfg.scm_size,
                    inline_threshold: cfg.inline_threshold as u64,
                };
                ckpt::write_pool_header(&hdr_path, &hdr)?;
                ckpt::sync_dir(dir)
            }
        }
    }

    /// Opens the bdev tier: the layout, the pool parameters, and a lock held while open.
    pub fn open(cfg: &PoolConfig) -> Result<(Layout, PoolHeader, File)> {
        match cfg.bdev_class {
            BdevClass::Kdev => {
                let path = &cfg.bdev_path;
                let f = open_direct(path, false).map_err(|e| VosError::io(path, e))?;
                let head = read_at(&f, path, 0, BLOCK as u64)?;
                let sb = Superblock::decode(path, head.as_slice())?;
                let lock = File::open(path).map_err(|e| VosError::io(path, e))?;
                if lock.try_lock().is_err() {
                    return Err(VosError::Pool {
                        path: path.clone(),
                        reason: "pool is already open (device lock is held)".into(),
                    });
                }
                let hdr = PoolHeader {
                    data_size: sb.data_len,
                    scm_size: sb.scm_size,
                    inline_threshold: sb.inline_threshold,
                };
                Ok((
                    Layout::Dev(Arc::new(Dev {
                        path: path.clone(),
                        file: Arc::new(f),
                        sb,
                    })),
                    hdr,
                    lock,
                ))
            }
            _ => {
                let dir = cfg.bdev_path.clone();
                let hdr_path = dir.join("pool.hdr");
                if !hdr_path.exists() {
                    return Err(VosError::Pool {
                        path: dir,
                        reason: "no pool here (pool.hdr missing); create it first".into(),
                    });
                }
                let hdr = ckpt::read_pool_header(&hdr_path)?;
                let lock_path = dir.join("pool.lock");
                let lock = File::create(&lock_path).map_err(|e| VosError::io(&lock_path, e))?;
                if lock.try_lock().is_err() {
                    return Err(VosError::Pool {
                        path: dir,
                        reason: "pool is already open (pool.lock is held)".into(),
                    });
                }
                Ok((Layout::Dir { dir }, hdr, lock))
            }
        }
    }

    /// A name for logs and errors.
    pub fn path(&self) -> &Path {
        match self {
            Layout::Dir { dir } => dir,
            Layout::Dev(d) => &d.path,
        }
    }

    /// Loads the newest valid checkpoint: (gen, checkpoint, bytes on disk).
    pub fn load_ckpt(&self) -> Result<(u64, ckpt::Ckpt, u64)> {
        match self {
            Layout::Dir { dir } => {
                let gens = ckpt::list_gens(dir, "ckpt.")?;
                let Some(&gen) = gens.last() else {
                    return Err(VosError::corrupt(
                        dir.join("ckpt.*"),
                        "no checkpoint file in the pool directory",
                    ));
                };
                let c = ckpt::read_ckpt(dir, gen)?;
                for g in gens.iter().filter(|g| **g < gen) {
                    let _ = std::fs::remove_file(ckpt::ckpt_path(dir, *g));
                }
                let bytes = std::fs::metadata(ckpt::ckpt_path(dir, gen))
                    .map(|m| m.len())
                    .unwrap_or(0);
                Ok((gen, c, bytes))
            }
            Layout::Dev(d) => {
                let label =
                    |slot: u64| PathBuf::from(format!("{}#ckpt-slot{slot}", d.path.display()));
                let mut found = Vec::new();
                for slot in 0..2u64 {
                    let off = BLOCK as u64 + slot * d.sb.slot_len;
                    let head = read_at(&d.file, &d.path, off, BLOCK as u64)?;
                    if let Some((gen, len, hdr)) = ckpt::peek_ckpt_header(head.as_slice()) {
                        found.push((gen, slot, off, len.saturating_add(hdr)));
                    }
                }
                found.sort_unstable();
                let mut last_err = None;
                for (gen, slot, off, len) in found.iter().rev() {
                    let total = align_up(*len);
                    if total > d.sb.slot_len {
                        last_err = Some(VosError::corrupt(
                            label(*slot),
                            "checkpoint length exceeds its slot",
                        ));
                        continue;
                    }
                    let buf = read_at(&d.file, &d.path, *off, total)?;
                    match ckpt::decode_ckpt(&label(*slot), &buf.as_slice()[..*len as usize], *gen) {
                        Ok(c) => {
                            if let Some(e) = last_err.take() {
                                if self.wal_has_gen(gen + 1)? {
                                    // The newer slot is damaged but its WAL generation is in
                                    // use: falling back would silently lose acknowledged updates.
                                    return Err(e);
                                }
                            }
                            return Ok((*gen, c, *len));
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                Err(last_err.unwrap_or_else(|| {
                    VosError::corrupt(label(0), "no valid checkpoint slot on the device")
                }))
            }
        }
    }

    fn wal_has_gen(&self, gen: u64) -> Result<bool> {
        let Layout::Dev(d) = self else {
            return Ok(false);
        };
        let head = read_at(&d.file, &d.path, d.sb.wal_off, BLOCK as u64)?;
        Ok(crate::wal::header_gen(head.as_slice()) == Some(gen))
    }

    /// The bytes of the WAL file of generation `gen` from byte `from` on (a 4 KiB multiple),
    /// and a label for errors (an empty Vec if the file is missing or shorter).
    pub fn read_wal_from(
        &self,
        wal_dir: &Path,
        gen: u64,
        on_scm: bool,
        from: u64,
    ) -> Result<(PathBuf, Vec<u8>)> {
        if from == 0 || (matches!(self, Layout::Dev(_)) && !on_scm) {
            return self.read_wal(wal_dir, gen, on_scm);
        }
        use std::io::{Read, Seek, SeekFrom};
        let p = ckpt::wal_path(wal_dir, gen);
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((p, Vec::new())),
            Err(e) => return Err(VosError::io(&p, e)),
        };
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(from))
            .and_then(|_| f.read_to_end(&mut v))
            .map_err(|e| VosError::io(&p, e))?;
        Ok((p, v))
    }

    /// The WAL bytes of generation `gen` (whole file / region) and a label for errors.
    pub fn read_wal(&self, wal_dir: &Path, gen: u64, on_scm: bool) -> Result<(PathBuf, Vec<u8>)> {
        match self {
            Layout::Dev(d) if !on_scm => {
                let b = read_at(&d.file, &d.path, d.sb.wal_off, d.sb.wal_len)?;
                Ok((
                    PathBuf::from(format!("{}#wal", d.path.display())),
                    b.as_slice().to_vec(),
                ))
            }
            _ => {
                let p = ckpt::wal_path(wal_dir, gen);
                match std::fs::read(&p) {
                    Ok(d) => Ok((p, d)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((p, Vec::new())),
                    Err(e) => Err(VosError::io(&p, e)),
                }
            }
        }
    }

    /// Writes checkpoint `gen` durably.
    pub fn write_ckpt(&self, gen: u64, next_lsn: u64, tail_pos: u64, body: &[u8]) -> Result<()> {
        match self {
            Layout::Dir { dir } => ckpt::write_ckpt(dir, gen, next_lsn, tail_pos, body),
            Layout::Dev(d) => Layout::write_slot(d, gen, next_lsn, tail_pos, body),
        }
    }

    fn write_slot(d: &Dev, gen: u64, next_lsn: u64, tail_pos: u64, body: &[u8]) -> Result<()> {
        let bytes = ckpt::encode_ckpt(gen, next_lsn, tail_pos, body);
        if align_up(bytes.len() as u64) > d.sb.slot_len {
            return Err(VosError::NoSpace {
                tier: "kdev checkpoint slot",
                need: bytes.len() as u64,
                free: d.sb.slot_len,
            });
        }
        let buf = AlignedBuf::from_slice(&bytes);
        let off = BLOCK as u64 + (gen % 2) * d.sb.slot_len;
        let mut ring = Ring::new(4);
        run(
            &mut ring,
            &d.path,
            &mut [
                IoOp::Write {
                    file: &d.file,
                    buf: buf.as_slice(),
                    off,
                },
                IoOp::Fdatasync { file: &d.file },
            ],
        )
    }

    /// Removes the checkpoint and WAL of generation `gen` (a checkpoint that could not be
    /// completed; the kdev slot needs nothing: the other slot still holds the newest one).
    pub fn discard_gen(&self, wal_dir: &Path, gen: u64) {
        if let Layout::Dir { dir } = self {
            let _ = std::fs::remove_file(dir.join(format!("ckpt.{gen:016x}.tmp")));
            let _ = std::fs::remove_file(ckpt::ckpt_path(dir, gen));
            let _ = ckpt::sync_dir(dir);
        }
        if !matches!(self, Layout::Dev(_)) || wal_dir != self.path() {
            let _ = std::fs::remove_file(ckpt::wal_path(wal_dir, gen));
            let _ = ckpt::sync_dir(wal_dir);
        }
    }

    /// Removes checkpoints below `gen` and WALs below `wal_below` (`gen`, or `gen - 1` while the
    /// WAL of `gen - 1` holds records written during checkpoint `gen`; see `recovery`).
    pub fn retire(&self, wal_dir: &Path, gen: u64, wal_below: u64) {
        if let Layout::Dir { dir } = self {
            for g in ckpt::list_gens(dir, "ckpt.")
                .unwrap_or_default()
                .into_iter()
                .filter(|g| *g < gen)
            {
                let _ = std::fs::remove_file(ckpt::ckpt_path(dir, g));
            }
        }
        for g in ckpt::list_gens(wal_dir, "wal.")
            .unwrap_or_default()
            .into_iter()
            .filter(|g| *g < wal_below)
        {
            let _ = std::fs::remove_file(ckpt::wal_path(wal_dir, g));
        }
    }

    /// The data file/region: (file, label, base offset).
    pub fn data(&self) -> Result<(Arc<File>, PathBuf, u64)> {
        match self {
            Layout::Dir { dir } => {
                let p = dir.join("data");
                let f = open_direct(&p, false).map_err(|e| VosError::io(&p, e))?;
                Ok((Arc::new(f), p, 0))
            }
            Layout::Dev(d) => Ok((
                d.file.clone(),
                PathBuf::from(format!("{}#data", d.path.display())),
                d.sb.data_off,
            )),
        }
    }

    /// Effective checkpoint threshold: a kdev WAL region must never fill up.
    pub fn wal_ckpt_bytes(&self, configured: u64) -> u64 {
        match self {
            Layout::Dir { .. } => configured,
            Layout::Dev(d) => configured.min(d.sb.wal_len / 2),
        }
    }
}

/// Writes zeros over the whole data file so later O_DIRECT writes are overwrites: no block
/// allocation, so their fdatasync needs no journal commit.
fn preallocate(path: &Path, size: u64) -> Result<()> {
    let f = open_direct(path, false).map_err(|e| VosError::io(path, e))?;
    let chunk = AlignedBuf::zeroed(8 << 20);
    let mut ring = Ring::new(16);
    let mut off = 0u64;
    while off < size {
        let mut ops = Vec::new();
        while off < size && ops.len() < 8 {
            let n = (chunk.len() as u64).min(size - off) as usize;
            ops.push(IoOp::Write {
                file: &f,
                buf: &chunk.as_slice()[..n],
                off,
            });
            off += n as u64;
        }
        run(&mut ring, path, &mut ops)?;
    }
    f.sync_all().map_err(|e| VosError::io(path, e))
}

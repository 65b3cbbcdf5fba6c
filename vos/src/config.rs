//! Storage tiers as DAOS's `daos_server.yml` names them, and the pool parameters.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::VosError;

/// First tier (`storage[0].class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScmClass {
    /// tmpfs "memory file": metadata lives in DRAM; its WAL and checkpoints live on the bdev tier.
    Ram,
    /// Persistent memory through PMDK libpmem (cargo feature `pmem`): the WAL lives in a
    /// pmem-mapped file on the scm path, persisted with cache flushes instead of fdatasync.
    Dcpm,
}

/// Second tier (`storage[1].class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BdevClass {
    /// A directory on a filesystem; files used with O_DIRECT through io_uring.
    File,
    /// A kernel block device (or fixed-size file) holding superblock, checkpoint slots, WAL
    /// region and data region; same O_DIRECT + io_uring path.
    Kdev,
    /// SPDK NVMe. SPDK is not available on this platform.
    Nvme,
}

impl FromStr for ScmClass {
    type Err = VosError;
    fn from_str(s: &str) -> Result<Self, VosError> {
        match s {
            "ram" => Ok(ScmClass::Ram),
            "dcpm" => Ok(ScmClass::Dcpm),
            _ => Err(VosError::Invalid(format!(
                "unknown scm class {s:?} (expected ram or dcpm)"
            ))),
        }
    }
}

impl FromStr for BdevClass {
    type Err = VosError;
    fn from_str(s: &str) -> Result<Self, VosError> {
        match s {
            "file" => Ok(BdevClass::File),
            "kdev" => Ok(BdevClass::Kdev),
            "nvme" => Ok(BdevClass::Nvme),
            _ => Err(VosError::Invalid(format!(
                "unknown bdev class {s:?} (expected file, kdev or nvme)"
            ))),
        }
    }
}

/// Everything needed to create or open a pool on one target.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub scm_class: ScmClass,
    /// tmpfs mount (class ram) or pmem file directory (class dcpm).
    pub scm_path: PathBuf,
    /// Metadata budget in bytes (reported by space query).
    pub scm_size: u64,
    pub bdev_class: BdevClass,
    /// Directory holding `pool.hdr`, `data`, `wal.*`, `ckpt.*` (class file), or the block
    /// device (class kdev).
    pub bdev_path: PathBuf,
    /// Data-file size in bytes, fixed at create.
    pub data_size: u64,
    /// Values larger than this go to the data file; smaller ones inline in the WAL.
    pub inline_threshold: usize,
    /// Write a checkpoint and start a new WAL once the WAL reaches this many bytes.
    pub wal_checkpoint_bytes: u64,
    /// WAL space is pre-zeroed in chunks of this size so fdatasync rarely changes file size.
    pub wal_chunk: u64,
    /// Write zeros over the data file at create so value writes never allocate blocks.
    pub preallocate_data: bool,
    /// WAL writer threads = batches in flight (1 = strictly serial group commit).
    pub flushers: usize,
    /// Group-commit wait, at most this long (and at most 0.6 of a batch write): after a batch
    /// is acknowledged, the next batch may wait for as many operations as that batch
    /// acknowledged (their submitters resubmitting), so a closed loop of N in flight commits N
    /// per fdatasync instead of alternating a small and a large batch. It waits only while
    /// such refills have taken less than 0.6 of a batch write (measured; see
    /// `commit_wait.rs`). Zero disables it.
    pub commit_wait_us: u64,
    /// Test-only fault injection at the flusher's real I/O sites (`None` in production).
    pub faults: Option<std::sync::Arc<crate::fault::Faults>>,
}

impl PoolConfig {
    /// Directory holding the WAL: the scm path for `dcpm`, the bdev directory otherwise.
    pub fn wal_dir(&self) -> &std::path::Path {
        match self.scm_class {
            ScmClass::Dcpm => &self.scm_path,
            ScmClass::Ram => &self.bdev_path, // unused for kdev (WAL region on the device)
        }
    }

    /// Bytes reserved (fallocate, not written) for each WAL file on the bdev tier: the
    /// checkpoint threshold (at most 1 GiB) plus two chunks, so the WAL's growth until the next
    /// checkpoint cannot fail for lack of space on a file system that fills up meanwhile.
    pub fn wal_reserve(&self) -> u64 {
        self.wal_checkpoint_bytes.min(1 << 30) + 2 * self.wal_chunk.max(4096)
    }

    /// Size of a pmem WAL mapping: the checkpoint threshold (at most 256 MiB) plus 64 MiB slack.
    pub fn pmem_wal_len(&self) -> u64 {
        self.wal_checkpoint_bytes.min(256 << 20) + (64 << 20)
    }

    /// Defaults: ram + file, 1 GiB metadata budget, 1 GiB data file, 4 KiB inline threshold,
    /// checkpoint every 256 MiB of WAL.
    pub fn new(scm_path: impl Into<PathBuf>, bdev_path: impl Into<PathBuf>) -> Self {
        PoolConfig {
            scm_class: ScmClass::Ram,
            scm_path: scm_path.into(),
            scm_size: 1 << 30,
            bdev_class: BdevClass::File,
            bdev_path: bdev_path.into(),
            data_size: 1 << 30,
            inline_threshold: 4096,
            wal_checkpoint_bytes: 256 << 20,
            wal_chunk: 16 << 20,
            preallocate_data: false,
            flushers: 1,
            commit_wait_us: 100,
            faults: None,
        }
    }

    /// Rejects classes this build cannot serve, with the reason.
    pub fn validate(&self) -> Result<(), VosError> {
        match self.scm_class {
            ScmClass::Ram => {}
            ScmClass::Dcpm if cfg!(feature = "pmem") => {}
            ScmClass::Dcpm => {
                return Err(VosError::Unsupported {
                    class: "dcpm",
                    reason: "this build lacks the `pmem` cargo feature (libpmem); rebuild with \
                             --features vos/pmem or use class ram"
                        .into(),
                })
            }
        }
        match self.bdev_class {
            BdevClass::File => {}
            BdevClass::Kdev => {}
            BdevClass::Nvme => {
                return Err(VosError::Unsupported {
                    class: "nvme",
                    reason: "SPDK is not available on this platform (not packaged for Debian, no spdk-rs crate); \
                             use class file (O_DIRECT + io_uring)"
                        .into(),
                })
            }
        }
        if self.data_size < 4096 {
            return Err(VosError::Invalid(format!(
                "data_size {} is below one 4 KiB block",
                self.data_size
            )));
        }
        Ok(())
    }
}

//! Checkpoint and pool-header files.
//!
//! ```text
//! ckpt.<gen 16 hex>  := magic "VCKP"(u32) version(u16)=2 pad(u16) gen(u64) next_lsn(u64)
//!                       body_len(u64) body_crc(u32) tail_pos(u64) hdr_crc(u32 over bytes 0..44)
//!                       body = bincode(Index)
//!                       (version 1, still read: no tail_pos, hdr_crc over bytes 0..36)
//! pool.hdr           := magic "VPOL"(u32) version(u16) pad(u16) data_size(u64) scm_size(u64)
//!                       inline_threshold(u64) hdr_crc(u32 over bytes 0..32)
//! ```
//! A checkpoint `ckpt.N` holds the index with every record below `next_lsn` applied; recovery
//! loads the highest-numbered checkpoint, replays the records at or after `next_lsn` that
//! `wal.N-1` holds from byte `tail_pos` on (logged while the checkpoint was being made), then
//! `wal.N`. Checkpoints are written to
//! a temp name, fsynced, renamed, and the directory fsynced, so a crash leaves either the old or
//! the new one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, VosError};
use crate::index::Index;

const CKPT_MAGIC: u32 = u32::from_le_bytes(*b"VCKP");
const POOL_MAGIC: u32 = u32::from_le_bytes(*b"VPOL");
/// Header bytes of a version-2 checkpoint (version 1: 40).
const CKPT_HDR: usize = 48;
const CKPT_HDR_V1: usize = 40;

pub fn ckpt_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("ckpt.{gen:016x}"))
}
pub fn wal_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("wal.{gen:016x}"))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8"))
}

/// Encodes the index for a checkpoint (done under the pool lock; the write happens outside it).
pub fn encode_index(index: &Index) -> Vec<u8> {
    bincode::encode_to_vec(index, bincode::config::standard()).expect("encode to Vec cannot fail")
}

/// The bytes of a checkpoint: header + body. `tail_pos`: where in the WAL being replaced the
/// batches logged after `next_lsn` start.
pub fn encode_ckpt(gen: u64, next_lsn: u64, tail_pos: u64, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; CKPT_HDR];
    h[0..4].copy_from_slice(&CKPT_MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[8..16].copy_from_slice(&gen.to_le_bytes());
    h[16..24].copy_from_slice(&next_lsn.to_le_bytes());
    h[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    h[32..36].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    h[36..44].copy_from_slice(&tail_pos.to_le_bytes());
    let hc = crc32c::crc32c(&h[0..44]);
    h[44..48].copy_from_slice(&hc.to_le_bytes());
    h.extend_from_slice(body);
    h
}

/// The header length of `b`'s version if its header checksum holds, else None.
fn header_len(b: &[u8]) -> Option<usize> {
    if b.len() < CKPT_HDR_V1 || le32(b, 0) != CKPT_MAGIC {
        return None;
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    let n = match version {
        1 => CKPT_HDR_V1,
        2 => CKPT_HDR,
        _ => return None,
    };
    (b.len() >= n && crc32c::crc32c(&b[0..n - 4]) == le32(b, n - 4)).then_some(n)
}

/// (generation, body length, header length) if `b` starts with a valid checkpoint header.
pub fn peek_ckpt_header(b: &[u8]) -> Option<(u64, u64, u64)> {
    let n = header_len(b)?;
    Some((le64(b, 8), le64(b, 24), n as u64))
}

/// A decoded checkpoint.
pub struct Ckpt {
    pub index: Index,
    pub next_lsn: u64,
    /// Byte offset in the previous generation's WAL where the records at or after `next_lsn`
    /// start (0 for a version-1 checkpoint: scan it whole).
    pub tail_pos: u64,
}

/// Verifies and decodes checkpoint bytes; `path` names the file or device slot in errors.
pub fn decode_ckpt(path: &Path, b: &[u8], gen: u64) -> Result<Ckpt> {
    if b.len() < CKPT_HDR_V1 || le32(b, 0) != CKPT_MAGIC {
        return Err(VosError::corrupt(
            path,
            "not a checkpoint (bad magic or too short)",
        ));
    }
    let Some(hdr) = header_len(b) else {
        return Err(VosError::corrupt(
            path,
            "checkpoint header checksum mismatch (or unknown version)",
        ));
    };
    if le64(b, 8) != gen {
        return Err(VosError::corrupt(
            path,
            format!("header says generation {}", le64(b, 8)),
        ));
    }
    let next_lsn = le64(b, 16);
    let tail_pos = if hdr == CKPT_HDR { le64(b, 36) } else { 0 };
    let len = le64(b, 24) as usize;
    let body = b.get(hdr..hdr.saturating_add(len)).ok_or_else(|| {
        VosError::corrupt(
            path,
            format!("truncated: body of {len} bytes, {} present", b.len() - hdr),
        )
    })?;
    if crc32c::crc32c(body) != le32(b, 32) {
        return Err(VosError::corrupt(path, "checkpoint body checksum mismatch"));
    }
    let (index, _) = bincode::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| VosError::corrupt(path, format!("undecodable index: {e}")))?;
    Ok(Ckpt {
        index,
        next_lsn,
        tail_pos,
    })
}

/// Writes `ckpt.<gen>` durably (temp + fsync + rename + dir fsync).
pub fn write_ckpt(dir: &Path, gen: u64, next_lsn: u64, tail_pos: u64, body: &[u8]) -> Result<()> {
    let path = ckpt_path(dir, gen);
    let tmp = dir.join(format!("ckpt.{gen:016x}.tmp"));
    let io = |e| VosError::io(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&encode_ckpt(gen, next_lsn, tail_pos, body))
        .map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| VosError::io(&path, e))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VosError::io(dir, e))
}

/// Reads and verifies `ckpt.<gen>`.
pub fn read_ckpt(dir: &Path, gen: u64) -> Result<Ckpt> {
    let path = ckpt_path(dir, gen);
    let b = std::fs::read(&path).map_err(|e| VosError::io(&path, e))?;
    decode_ckpt(&path, &b, gen)
}

/// Generations of every `ckpt.*` file in `dir` (ignoring temp files), ascending.
pub fn list_gens(dir: &Path, prefix: &str) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| VosError::io(dir, e))? {
        let e = e.map_err(|e| VosError::io(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(hex) = name.strip_prefix(prefix) {
            if hex.len() == 16 {
                if let Ok(g) = u64::from_str_radix(hex, 16) {
                    v.push(g);
                }
            }
        }
    }
    v.sort_unstable();
    Ok(v)
}

const CLEAN_MAGIC: u32 = u32::from_le_bytes(*b"VCLN");

/// `pool.clean`, written at a clean close (after the seal): the WAL generation and the LSN the
/// log ends at. Recovery checks that the log still reaches that LSN (a WAL cut short after a clean
/// close would otherwise look like a crash and lose acknowledged updates silently), then deletes
/// the file before the pool takes new updates.
/// `magic "VCLN"(u32) version(u16)=1 pad(u16) gen(u64) next_lsn(u64) crc(u32 over bytes 0..24)`.
pub fn clean_path(dir: &Path) -> PathBuf {
    dir.join("pool.clean")
}

/// Writes `pool.clean` durably.
pub fn write_clean(dir: &Path, gen: u64, next_lsn: u64) -> Result<()> {
    let mut b = [0u8; 28];
    b[0..4].copy_from_slice(&CLEAN_MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&1u16.to_le_bytes());
    b[8..16].copy_from_slice(&gen.to_le_bytes());
    b[16..24].copy_from_slice(&next_lsn.to_le_bytes());
    let c = crc32c::crc32c(&b[0..24]);
    b[24..28].copy_from_slice(&c.to_le_bytes());
    let path = clean_path(dir);
    let io = |e| VosError::io(&path, e);
    let mut f = File::create(&path).map_err(io)?;
    f.write_all(&b).map_err(io)?;
    f.sync_all().map_err(io)?;
    sync_dir(dir)
}

/// (gen, next_lsn) from `pool.clean`, if it exists and is intact (a damaged one is ignored:
/// recovery then treats the log as after a crash, as without the file).
pub fn read_clean(dir: &Path) -> Option<(u64, u64)> {
    let b = std::fs::read(clean_path(dir)).ok()?;
    (b.len() == 28 && le32(&b, 0) == CLEAN_MAGIC && crc32c::crc32c(&b[0..24]) == le32(&b, 24))
        .then(|| (le64(&b, 8), le64(&b, 16)))
}

/// Deletes `pool.clean` durably (before the pool takes new updates).
pub fn remove_clean(dir: &Path) -> Result<()> {
    let path = clean_path(dir);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VosError::io(&path, e)),
    }
}

/// Fixed pool parameters stored at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolHeader {
    pub data_size: u64,
    pub scm_size: u64,
    pub inline_threshold: u64,
}

pub fn write_pool_header(path: &Path, h: &PoolHeader) -> Result<()> {
    let mut b = [0u8; 36];
    b[0..4].copy_from_slice(&POOL_MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&1u16.to_le_bytes());
    b[8..16].copy_from_slice(&h.data_size.to_le_bytes());
    b[16..24].copy_from_slice(&h.scm_size.to_le_bytes());
    b[24..32].copy_from_slice(&h.inline_threshold.to_le_bytes());
    let c = crc32c::crc32c(&b[0..32]);
    b[32..36].copy_from_slice(&c.to_le_bytes());
    let io = |e| VosError::io(path, e);
    let mut f = File::create(path).map_err(io)?;
    f.write_all(&b).map_err(io)?;
    f.sync_all().map_err(io)
}

pub fn read_pool_header(path: &Path) -> Result<PoolHeader> {
    let b = std::fs::read(path).map_err(|e| VosError::io(path, e))?;
    if b.len() != 36 || le32(&b, 0) != POOL_MAGIC {
        return Err(VosError::corrupt(
            path,
            "not a vos pool header (bad magic or size)",
        ));
    }
    if crc32c::crc32c(&b[0..32]) != le32(&b, 32) {
        return Err(VosError::corrupt(path, "pool header checksum mismatch"));
    }
    Ok(PoolHeader {
        data_size: le64(&b, 8),
        scm_size: le64(&b, 16),
        inline_threshold: le64(&b, 24),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_keeps_tail_pos_and_version_1_still_decodes() {
        let body = encode_index(&Index::default());
        let b = encode_ckpt(7, 42, 3 << 12, &body);
        assert_eq!(peek_ckpt_header(&b), Some((7, body.len() as u64, 48)));
        let c = decode_ckpt(Path::new("ckpt.x"), &b, 7).unwrap();
        assert_eq!((c.next_lsn, c.tail_pos), (42, 3 << 12));

        // A version-1 checkpoint (40-byte header, written before tail_pos existed).
        let mut v1 = vec![0u8; CKPT_HDR_V1];
        v1[0..4].copy_from_slice(&CKPT_MAGIC.to_le_bytes());
        v1[4..6].copy_from_slice(&1u16.to_le_bytes());
        v1[8..16].copy_from_slice(&7u64.to_le_bytes());
        v1[16..24].copy_from_slice(&42u64.to_le_bytes());
        v1[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
        v1[32..36].copy_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        let hc = crc32c::crc32c(&v1[0..36]);
        v1[36..40].copy_from_slice(&hc.to_le_bytes());
        v1.extend_from_slice(&body);
        assert_eq!(peek_ckpt_header(&v1), Some((7, body.len() as u64, 40)));
        let c = decode_ckpt(Path::new("ckpt.x"), &v1, 7).unwrap();
        assert_eq!((c.next_lsn, c.tail_pos), (42, 0));

        // A flipped tail_pos byte fails the header checksum: never a wrong replay start.
        let mut bad = b.clone();
        bad[37] ^= 1;
        let e = decode_ckpt(Path::new("ckpt.x"), &bad, 7).err().unwrap();
        assert!(e.to_string().contains("header checksum"), "{e}");
        assert_eq!(peek_ckpt_header(&bad), None);
    }
}

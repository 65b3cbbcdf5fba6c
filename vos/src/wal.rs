//! Write-ahead log format: group-commit batches, each starting on a 4 KiB boundary.
//!
//! ```text
//! batch  := header(48 B) body zero-padding-to-4KiB
//! header := magic "VWAL"(u32 LE) version(u16) pad(u16) gen(u64) lsn_first(u64) nrec(u32)
//!           body_len(u32) body_crc(u32, crc32c of body) durable_lsn(u64) hdr_crc(u32, crc32c of bytes 0..44)
//! body   := nrec × (len u32 LE, bincode(IndexOp))
//! ```
//! A batch is written with one O_DIRECT write and made durable with one fdatasync before any of
//! its updates is acknowledged; up to two batches are in flight, acknowledged in LSN order.
//! `durable_lsn` is the next LSN not yet acknowledged when the batch was written. Replay stops
//! at the first batch whose header or body checksum fails. Batch writes are issued in LSN order
//! (a batch is written only once the previous batch's write has completed; their fdatasyncs
//! still overlap), so after a crash only the last written batch can be torn. If a complete,
//! checksum-valid batch of the same generation follows the failed one (with higher LSNs, or a
//! `durable_lsn` showing the failed batch was acknowledged), the log is damaged in the middle:
//! replay fails with an error naming the file and both offsets instead of silently dropping
//! acknowledged updates. Otherwise it is a torn tail and is discarded. A clean close appends an
//! empty "seal" batch whose `durable_lsn` covers everything, so damage to the last data batch
//! of a cleanly closed pool is reported too.

use std::path::Path;

use crate::error::{Result, VosError};
use crate::index::IndexOp;
use crate::uring::{align_up, AlignedBuf, BLOCK};

pub const MAGIC: u32 = u32::from_le_bytes(*b"VWAL");
pub const VERSION: u16 = 1;
pub const HDR: usize = 48;

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Accumulates encoded records for the next batch.
#[derive(Default)]
pub struct BatchBuilder {
    body: Vec<u8>,
    nrec: u32,
}

impl BatchBuilder {
    pub fn push(&mut self, op: &IndexOp) {
        let at = self.body.len();
        self.body.extend_from_slice(&[0; 4]);
        bincode::encode_into_std_write(op, &mut self.body, cfg())
            .expect("encode to Vec cannot fail");
        let n = (self.body.len() - at - 4) as u32;
        self.body[at..at + 4].copy_from_slice(&n.to_le_bytes());
        self.nrec += 1;
    }
    /// An empty builder writing into `body`, a buffer of an earlier batch: its capacity is
    /// kept, so a batch does not grow a fresh Vec through reallocations and page faults (for
    /// 4 KiB updates at QD16 that growth was a quarter of the submitting thread's time).
    pub fn with_buffer(mut body: Vec<u8>) -> BatchBuilder {
        body.clear();
        BatchBuilder { body, nrec: 0 }
    }
    /// The body buffer, for a later batch ([`BatchBuilder::with_buffer`]).
    pub fn into_buffer(self) -> Vec<u8> {
        self.body
    }
    pub fn is_empty(&self) -> bool {
        self.nrec == 0
    }
    /// Where the builder is now, to [`truncate`](Self::truncate) back to.
    pub fn mark(&self) -> (usize, u32) {
        (self.body.len(), self.nrec)
    }
    /// Drops the records pushed since `mark`.
    pub fn truncate(&mut self, mark: (usize, u32)) {
        self.body.truncate(mark.0);
        self.nrec = mark.1;
    }
    pub fn nrec(&self) -> u32 {
        self.nrec
    }
    /// Bytes this batch will occupy on disk.
    pub fn disk_len(&self) -> u64 {
        align_up((HDR + self.body.len()) as u64)
    }
    /// Lays out header + body + padding in an aligned buffer.
    pub fn seal(&self, gen: u64, lsn_first: u64, durable_lsn: u64) -> AlignedBuf {
        let mut b = [0u8; HDR];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&gen.to_le_bytes());
        b[16..24].copy_from_slice(&lsn_first.to_le_bytes());
        b[24..28].copy_from_slice(&self.nrec.to_le_bytes());
        b[28..32].copy_from_slice(&(self.body.len() as u32).to_le_bytes());
        b[32..36].copy_from_slice(&crc32c::crc32c(&self.body).to_le_bytes());
        b[36..44].copy_from_slice(&durable_lsn.to_le_bytes());
        let hc = crc32c::crc32c(&b[0..44]);
        b[44..48].copy_from_slice(&hc.to_le_bytes());
        AlignedBuf::from_parts(&[&b, &self.body])
    }
}

struct Header {
    gen: u64,
    lsn_first: u64,
    nrec: u32,
    body_len: usize,
    body_crc: u32,
    durable_lsn: u64,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn parse_header(b: &[u8]) -> Option<Header> {
    if b.len() < HDR || le32(b, 0) != MAGIC || crc32c::crc32c(&b[0..44]) != le32(b, 44) {
        return None;
    }
    Some(Header {
        gen: le64(b, 8),
        lsn_first: le64(b, 16),
        nrec: le32(b, 24),
        body_len: le32(b, 28) as usize,
        body_crc: le32(b, 32),
        durable_lsn: le64(b, 36),
    })
}

/// The first LSN of the log `b` of generation `gen`, if it starts with a valid batch header.
pub fn first_lsn(b: &[u8], gen: u64) -> Option<u64> {
    parse_header(b)
        .filter(|h| h.gen == gen)
        .map(|h| h.lsn_first)
}

/// The generation of a valid batch header at the start of `b`, if any.
pub fn header_gen(b: &[u8]) -> Option<u64> {
    parse_header(b).map(|h| h.gen)
}

/// What replay found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanInfo {
    /// Byte offset just past the last valid batch (where the next batch goes).
    pub end: u64,
    pub next_lsn: u64,
    pub batches: u64,
    pub records: u64,
    /// Bytes of torn (unacknowledged) batches that were discarded (0 if the log ended cleanly).
    pub torn_bytes: u64,
    /// End of the bytes that must be zeroed before the log is appended to again.
    pub dirty_end: u64,
    /// The log is empty or ends with a seal (an empty batch written at a clean close).
    pub sealed: bool,
}

/// Replays the log `data` (the whole file) of generation `gen`, starting at `next_lsn`, handing
/// each record to `apply`.
pub fn scan(
    path: &Path,
    data: &[u8],
    gen: u64,
    next_lsn: u64,
    apply: impl FnMut(IndexOp),
) -> Result<ScanInfo> {
    scan_upto(path, data, gen, next_lsn, u64::MAX, 0, apply)
}

/// [`scan`], stopping before the first batch whose records start at or after `stop_lsn`.
/// Batches whose records all lie below `skip_below` (covered by a checkpoint) are checked but
/// not decoded, and their records are neither applied nor counted.
pub fn scan_upto(
    path: &Path,
    data: &[u8],
    gen: u64,
    next_lsn: u64,
    stop_lsn: u64,
    skip_below: u64,
    mut apply: impl FnMut(IndexOp),
) -> Result<ScanInfo> {
    let mut info = ScanInfo {
        next_lsn,
        sealed: true,
        ..Default::default()
    };
    let mut pos = 0usize;
    while pos + HDR <= data.len() && info.next_lsn < stop_lsn {
        let hdr = parse_header(&data[pos..]);
        let body_ok = hdr.as_ref().is_some_and(|h| {
            h.gen == gen
                && h.lsn_first == info.next_lsn
                && pos + HDR + h.body_len <= data.len()
                && crc32c::crc32c(&data[pos + HDR..pos + HDR + h.body_len]) == h.body_crc
        });
        if !body_ok {
            let skip_to = match &hdr {
                Some(h) if h.gen == gen => pos + align_up((HDR + h.body_len) as u64) as usize,
                _ => pos + BLOCK,
            };
            if let Some((at, h)) = later_valid_batch(data, skip_to, gen, info.next_lsn) {
                let why = if h.durable_lsn > info.next_lsn {
                    format!(
                        "its durable_lsn {} shows LSN {} had been acknowledged",
                        h.durable_lsn, info.next_lsn
                    )
                } else {
                    "batches are written in LSN order, so the damaged one had been \
                     written completely before it: not a torn write"
                        .to_string()
                };
                return Err(VosError::corrupt(
                    path,
                    format!(
                        "WAL batch at offset {pos} (LSN {}) fails its checksum but a valid batch \
                         follows at offset {at} (LSN {}): {why}; the log is damaged in the \
                         middle, and discarding it would drop acknowledged updates",
                        info.next_lsn, h.lsn_first
                    ),
                ));
            }
            // Everything of this generation after `pos` is unacknowledged (at most the two
            // batches in flight at the crash) and must be zeroed before the log is reused; older
            // generations' bytes (a reused kdev region) are ignored by the generation check.
            let mut dirty = pos;
            let mut p = pos;
            while p + HDR <= data.len() {
                if let Some(h) = parse_header(&data[p..]) {
                    if h.gen == gen {
                        dirty = dirty.max(p + align_up((HDR + h.body_len) as u64) as usize);
                    }
                }
                p += BLOCK;
            }
            let dirty = dirty.min(data.len());
            if dirty > pos {
                info.torn_bytes = (dirty - pos) as u64;
                tracing::warn!(file = %path.display(), offset = pos, bytes = dirty - pos, "discarding torn WAL tail");
            }
            info.dirty_end = dirty as u64;
            break;
        }
        let h = hdr.expect("checked");
        let body = &data[pos + HDR..pos + HDR + h.body_len];
        // Records of this batch below `skip_below` are covered by the checkpoint: a batch
        // wholly below it is not even walked.
        let covered = skip_below.saturating_sub(info.next_lsn);
        let walk = if covered >= h.nrec as u64 { 0 } else { h.nrec };
        let mut at = 0usize;
        for i in 0..walk {
            if at + 4 > body.len() {
                return Err(VosError::corrupt(
                    path,
                    format!("WAL batch at {pos}: record table overruns body"),
                ));
            }
            let n = le32(body, at) as usize;
            at += 4;
            if at + n > body.len() {
                return Err(VosError::corrupt(
                    path,
                    format!("WAL batch at {pos}: record length {n} overruns body"),
                ));
            }
            if (i as u64) < covered {
                at += n;
                continue;
            }
            let (op, _): (IndexOp, usize) = bincode::decode_from_slice(&body[at..at + n], cfg())
                .map_err(|e| {
                    VosError::corrupt(path, format!("WAL batch at {pos}: undecodable record: {e}"))
                })?;
            at += n;
            apply(op);
            info.records += 1;
        }
        info.batches += 1;
        info.sealed = h.nrec == 0;
        info.next_lsn += h.nrec as u64;
        pos += align_up((HDR + h.body_len) as u64) as usize;
        info.end = pos as u64;
    }
    Ok(info)
}

/// Evidence that the failed batch at `lsn` is not a torn tail: a later batch header of `gen`
/// whose `durable_lsn` shows `lsn` acknowledged (preferred), or else the first complete,
/// checksum-valid later batch of `gen` with higher LSNs.
fn later_valid_batch(data: &[u8], from: usize, gen: u64, lsn: u64) -> Option<(usize, Header)> {
    let mut p = from.div_ceil(BLOCK) * BLOCK;
    let mut first = None;
    while p + HDR <= data.len() {
        if let Some(h) = parse_header(&data[p..]) {
            let end = p + HDR + h.body_len;
            if h.gen == gen && h.durable_lsn > lsn {
                // A valid header alone proves `lsn` was acknowledged when it was written.
                return Some((p, h));
            }
            if h.gen == gen
                && h.lsn_first > lsn
                && end <= data.len()
                && crc32c::crc32c(&data[p + HDR..end]) == h.body_crc
            {
                first = first.or(Some((p, h)));
            }
        }
        p += BLOCK;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(i: u64) -> IndexOp {
        IndexOp::Discard {
            cont: 1,
            lo: i,
            hi: i,
        }
    }

    fn log(batches: &[Vec<u64>]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut lsn = 1;
        for b in batches {
            let mut bb = BatchBuilder::default();
            for i in b {
                bb.push(&op(*i));
            }
            v.extend_from_slice(bb.seal(7, lsn, lsn).as_slice());
            lsn += b.len() as u64;
        }
        v.resize(v.len() + 8192, 0);
        v
    }

    #[test]
    fn replays_all_batches_in_order() {
        let d = log(&[vec![1, 2], vec![3]]);
        let mut got = Vec::new();
        let info = scan(Path::new("w"), &d, 7, 1, |o| got.push(o)).unwrap();
        assert_eq!(got, vec![op(1), op(2), op(3)]);
        assert_eq!(info.next_lsn, 4);
        assert_eq!(info.end, 8192);
        assert_eq!(info.torn_bytes, 0);
    }

    #[test]
    fn torn_tail_is_discarded_middle_damage_is_an_error() {
        let mut d = log(&[vec![1], vec![2]]);
        d[4096 + HDR + 1] ^= 0xff; // last batch body
        let mut got = Vec::new();
        let info = scan(Path::new("w"), &d, 7, 1, |o| got.push(o)).unwrap();
        assert_eq!(got, vec![op(1)]);
        assert_eq!(info.end, 4096);
        assert!(info.torn_bytes > 0);

        let mut d = log(&[vec![1], vec![2]]);
        d[HDR + 1] ^= 0xff; // first batch body, a valid batch follows
        let e = scan(Path::new("wal.x"), &d, 7, 1, |_| {}).unwrap_err();
        assert!(e.to_string().contains("wal.x"), "{e}");
    }

    /// Batches (lsn, durable_lsn) of one record each, 4 KiB apart, then 8 KiB of zeros.
    fn log_acked(batches: &[(u64, u64)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(lsn, durable) in batches {
            let mut bb = BatchBuilder::default();
            bb.push(&op(lsn));
            v.extend_from_slice(bb.seal(7, lsn, durable).as_slice());
        }
        v.resize(v.len() + 8192, 0);
        v
    }

    #[test]
    fn damage_followed_by_a_valid_in_flight_batch_is_corruption_not_a_torn_tail() {
        // Batch 2 was written while batch 1 was still in flight (durable_lsn 1: nothing acked
        // yet), so durable_lsn alone cannot tell; but batch 2 is only written once batch 1's
        // write completed, so a damaged batch 1 is not a torn write.
        for flip in [HDR + 1, 3, 20, 44] {
            let mut v = log_acked(&[(1, 1), (2, 1)]);
            v[flip] ^= 0xff;
            let e = scan(Path::new("wal.7"), &v, 7, 1, |_| {}).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("wal.7") && msg.contains("offset 0"), "{msg}");
            assert!(msg.contains("offset 4096"), "{msg}");
        }
        // The same damage with an acknowledging batch after it names the durable_lsn.
        let mut v = log_acked(&[(1, 1), (2, 1), (3, 3)]);
        v[HDR + 1] ^= 0xff;
        let msg = scan(Path::new("w"), &v, 7, 1, |_| {})
            .unwrap_err()
            .to_string();
        assert!(msg.contains("durable_lsn"), "{msg}");
    }

    #[test]
    fn only_the_last_batch_damaged_is_a_torn_tail_and_stale_batches_do_not_count() {
        let mut v = log_acked(&[(1, 1), (2, 1)]);
        v[4096 + HDR + 1] ^= 0xff;
        let info = scan(Path::new("w"), &v, 7, 1, |_| {}).unwrap();
        assert_eq!((info.records, info.end), (1, 4096));
        assert!(info.torn_bytes > 0);
        // A later batch whose body fails its checksum too is part of the torn tail.
        let mut v = log_acked(&[(1, 1), (2, 1)]);
        v[HDR + 1] ^= 0xff;
        v[4096 + HDR + 1] ^= 0xff;
        let info = scan(Path::new("w"), &v, 7, 1, |_| {}).unwrap();
        assert_eq!((info.records, info.end), (0, 0));
        // A valid batch of an older generation (a reused kdev region) is not evidence.
        let mut v = log_acked(&[(1, 1)]);
        let mut bb = BatchBuilder::default();
        bb.push(&op(9));
        v[4096..8192].copy_from_slice(bb.seal(6, 2, 9).as_slice());
        v[HDR + 1] ^= 0xff;
        assert!(scan(Path::new("w"), &v, 7, 1, |_| {}).is_ok());
    }
}

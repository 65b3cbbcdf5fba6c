//! Hybrid logical clock, laid out as DAOS's (`src/gurt/hlc.c`): the high bits are physical time
//! (nanoseconds since 2021-01-01 00:00:00 UTC, times 16), the low 18 bits are a logical counter.
//! Every RPC header carries a timestamp; the receiver calls [`Hlc::update`] so causally later events
//! always get larger timestamps, across processes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2021-01-01 00:00:00 UTC in Unix seconds (DAOS `D_HLC_START_SEC`).
pub const HLC_START_SEC: u64 = 1_609_459_200;
/// Low bits reserved for the logical counter.
pub const HLC_LOGICAL_BITS: u32 = 18;
const HLC_MASK: u64 = (1 << HLC_LOGICAL_BITS) - 1;
/// Default maximum tolerated clock skew between two nodes (DAOS epsilon: 1 s).
pub const HLC_EPSILON: Duration = Duration::from_secs(1);

/// Error from [`Hlc::update`]: the remote clock is further ahead than the epsilon allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("remote HLC {remote:#x} is {ahead_ns} ns ahead of the local physical clock (epsilon {epsilon_ns} ns)")]
pub struct HlcSkew {
    /// The timestamp received.
    pub remote: u64,
    /// How far ahead it is, in nanoseconds.
    pub ahead_ns: u64,
    /// The tolerated skew, in nanoseconds.
    pub epsilon_ns: u64,
}

impl crate::DaosErrno for HlcSkew {
    fn der(&self) -> crate::Der {
        crate::Der::HlcSync
    }
}

/// A process-wide (or per-test) hybrid logical clock. Lock-free; `Sync`.
#[derive(Debug)]
pub struct Hlc {
    last: AtomicU64,
    epsilon: Duration,
}

impl Default for Hlc {
    fn default() -> Self {
        Self::new()
    }
}

/// Converts nanoseconds since 2021-01-01 to the HLC physical part (logical bits rounded up).
pub fn nsec_to_hlc(ns: u64) -> u64 {
    (ns.saturating_mul(16).saturating_add(HLC_MASK)) & !HLC_MASK
}

/// Converts an HLC timestamp to nanoseconds since 2021-01-01.
pub fn hlc_to_nsec(hlc: u64) -> u64 {
    hlc / 16
}

/// The physical part of a timestamp taken now (the clock read behind [`Hlc::now`]); callers that
/// stamp several events of one moment (a batch of received messages) read it once and use
/// [`Hlc::now_at`] / [`Hlc::update_at`].
pub fn physical_now() -> u64 {
    nsec_to_hlc(wall_nsec())
}

/// Wall-clock nanoseconds since 2021-01-01 (the HLC epoch), saturating.
pub fn wall_nsec() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs()
        .saturating_sub(HLC_START_SEC)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
        .min(u64::MAX / 16)
}

impl Hlc {
    /// A clock with DAOS's 1 s epsilon.
    pub const fn new() -> Self {
        Hlc {
            last: AtomicU64::new(0),
            epsilon: HLC_EPSILON,
        }
    }

    /// A clock with a chosen epsilon.
    pub const fn with_epsilon(epsilon: Duration) -> Self {
        Hlc {
            last: AtomicU64::new(0),
            epsilon,
        }
    }

    /// A new timestamp, strictly greater than every one this clock produced or received before.
    pub fn now(&self) -> u64 {
        self.now_at(physical_now())
    }

    /// [`Hlc::now`] with the physical part `pt` read by the caller ([`physical_now`]) shortly before.
    pub fn now_at(&self, pt: u64) -> u64 {
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if pt > last { pt } else { last + 1 };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(cur) => last = cur,
            }
        }
    }

    /// The newest timestamp seen, without advancing the clock.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Merges a timestamp received from a peer, returning the local timestamp for the receive event
    /// (greater than both). A remote clock more than epsilon ahead of local physical time is refused
    /// (`DER_HLC_SYNC`) and does not move the clock.
    pub fn update(&self, remote: u64) -> Result<u64, HlcSkew> {
        self.update_at(remote, physical_now())
    }

    /// [`Hlc::update`] with the physical part `pt` read by the caller ([`physical_now`]) shortly
    /// before.
    pub fn update_at(&self, remote: u64, pt: u64) -> Result<u64, HlcSkew> {
        let eps = nsec_to_hlc(u64::try_from(self.epsilon.as_nanos()).unwrap_or(u64::MAX / 16));
        if remote > pt.saturating_add(eps) {
            return Err(HlcSkew {
                remote,
                ahead_ns: hlc_to_nsec(remote - pt),
                epsilon_ns: hlc_to_nsec(eps),
            });
        }
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let base = last.max(remote);
            let next = if pt > base { pt } else { base + 1 };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(next),
                Err(cur) => last = cur,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_monotonic() {
        let c = Hlc::new();
        let mut prev = 0;
        for _ in 0..100_000 {
            let t = c.now();
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn physical_part_is_near_wall_clock() {
        let c = Hlc::new();
        let t = c.now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            - HLC_START_SEC * 1_000_000_000;
        let diff = wall.abs_diff(hlc_to_nsec(t));
        assert!(
            diff < 1_000_000_000,
            "hlc {t:#x} is {diff} ns from wall clock"
        );
    }

    #[test]
    fn physical_now_matches_the_u128_formula() {
        for _ in 0..1000 {
            let before = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                - u128::from(HLC_START_SEC) * 1_000_000_000;
            let p = hlc_to_nsec(physical_now()) as u128;
            let after = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                - u128::from(HLC_START_SEC) * 1_000_000_000;
            // nsec_to_hlc rounds the logical bits up: at most 2^18 / 16 ns later.
            assert!(
                p >= before && p <= after + (1 << 14),
                "{before} {p} {after}"
            );
        }
    }

    #[test]
    fn stamps_at_a_shared_reading_stay_unique_and_ordered() {
        let c = Hlc::new();
        let pt = physical_now();
        let a = c.update_at(pt, pt).unwrap();
        let b = c.now_at(pt);
        let d = c.now_at(pt);
        assert!(a >= pt && b > a && d > b);
    }

    #[test]
    fn update_moves_past_remote() {
        let a = Hlc::new();
        let b = Hlc::new();
        // b is 100 ms ahead (inside epsilon).
        let remote = physical_now() + nsec_to_hlc(100_000_000);
        let t = b.update(remote).unwrap();
        assert!(t > remote);
        // a receives b's time: a's next event is after it.
        let bt = b.now();
        a.update(bt).unwrap();
        assert!(a.now() > bt);
    }

    #[test]
    fn update_refuses_clock_far_ahead() {
        let c = Hlc::with_epsilon(Duration::from_millis(10));
        let before = c.now();
        let remote = physical_now() + nsec_to_hlc(5_000_000_000);
        let err = c.update(remote).unwrap_err();
        assert!(err.ahead_ns > 4_000_000_000);
        assert_eq!(crate::DaosErrno::der(&err), crate::Der::HlcSync);
        assert!(c.last() < remote && c.last() >= before);
    }

    #[test]
    fn concurrent_now_is_unique() {
        let c = std::sync::Arc::new(Hlc::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..10_000).map(|_| c.now()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}

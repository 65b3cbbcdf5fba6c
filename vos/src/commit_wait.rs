//! Group-commit wait: whether the next WAL batch waits for the submitters of the batch just
//! acknowledged.
//!
//! With a closed loop of N operations in flight and one flusher, taking "whatever is queued"
//! right after an acknowledgement catches only the first few resubmissions, and the loop
//! settles into a small and a large batch alternating, each paying a whole fdatasync (4 KiB,
//! QD16: 8.0 operations per batch on average, 37.7k-42.8k ops/s). Waiting for all N fills
//! each batch (16.0 per batch, 47.2k-52.7k ops/s). But when resubmitting N operations costs
//! about as much as the write itself (64 B, QD64: 154 µs to refill against a 152 µs write),
//! split batches overlap that CPU work with the I/O and win (194k-201k against 169k-184k).
//!
//! So the policy measures both sides: the refill time (from an acknowledgement until all its
//! submitters have resubmitted) and the batch write time (data write, WAL write, fdatasyncs),
//! each smoothed, and waits only while refilling takes less than [`REFILL_MAX`] of a write.
//! The refill time is measured in both modes (in the no-wait mode the submitters refill while
//! the next batch is written), so no probing is needed. Seen here: 4 KiB QD16 refill 80-100
//! µs against writes of 150-190 µs (wait); 64 B QD64 refill 80-105 µs against 120-160 µs
//! (split); 1 MiB QD16 refill ≈ 3 ms against ≈ 4 ms (split: waiting for full 16 MiB batches
//! cost a quarter of the bandwidth, 1.50 against 2.05 GB/s). A wait is bounded by
//! `PoolConfig::commit_wait_us` and by that same fraction of a write, and a lone submitter
//! never waits (it already is the whole expected batch).

use std::time::{Duration, Instant};

/// Wait only while a refill takes less than this fraction of a batch write (write + syncs).
const REFILL_MAX: f64 = 0.6;
/// Weight of the newest sample in the smoothed times.
const ALPHA: f64 = 0.2;

#[derive(Debug, Default)]
pub(crate) struct CommitWait {
    /// Operations submitted so far.
    submitted: u64,
    /// `submitted` once the submitters of the last acknowledged batch have all resubmitted.
    expect: u64,
    /// When the last batch was acknowledged, while its refill is being timed.
    acked_at: Option<Instant>,
    /// Smoothed refill and batch-write times, in µs.
    refill_us: Option<f64>,
    write_us: Option<f64>,
}

fn smooth(e: &mut Option<f64>, v: f64) {
    *e = Some(e.map_or(v, |old| old * (1.0 - ALPHA) + v * ALPHA));
}

impl CommitWait {
    /// One operation was queued (`now` is asked only when it completes the expected batch).
    /// True when a flusher waiting for the expected batch should be woken.
    pub(crate) fn submitted(&mut self, now: impl FnOnce() -> Instant) -> bool {
        self.submitted += 1;
        if self.submitted != self.expect {
            return false;
        }
        if let Some(t) = self.acked_at.take() {
            smooth(
                &mut self.refill_us,
                now().duration_since(t).as_secs_f64() * 1e6,
            );
        }
        true
    }

    /// A batch of `ops` operations, written (and synced) in `write`, was acknowledged at `now`.
    pub(crate) fn acked(&mut self, ops: usize, write: Duration, now: Instant) {
        if let Some(t) = self.acked_at.take() {
            // The previous batch's submitters did not all come back within a whole batch.
            smooth(
                &mut self.refill_us,
                now.duration_since(t).as_secs_f64() * 1e6,
            );
        }
        smooth(&mut self.write_us, write.as_secs_f64() * 1e6);
        self.expect = self.submitted + ops as u64;
        self.acked_at = Some(now);
    }

    /// A wait for the expected batch ran out: those submitters are slow (or gone), so count
    /// the refill as a whole write, which stops the waiting until refills are cheap again.
    pub(crate) fn timed_out(&mut self) {
        if self.acked_at.take().is_some() {
            let w = self.write_us.unwrap_or(0.0);
            smooth(&mut self.refill_us, w);
        }
    }

    /// Should the flusher wait before taking the queued batch? Only while submitters of the
    /// last batch are still missing and refilling has been cheaper than `REFILL_MAX` of a write.
    pub(crate) fn should_wait(&self, limit: Duration) -> bool {
        let cheap = match (self.refill_us, self.write_us) {
            (Some(r), Some(w)) => r < w * REFILL_MAX,
            _ => true, // not measured yet: find out
        };
        !limit.is_zero() && self.missing() && cheap
    }

    /// How long to wait at most: `limit`, and no longer than the refill time the policy
    /// accepts (a wait that runs this long has already lost against splitting the batch).
    pub(crate) fn bound(&self, limit: Duration) -> Duration {
        match self.write_us {
            Some(w) => limit.min(Duration::from_secs_f64(w * REFILL_MAX / 1e6)),
            None => limit,
        }
    }

    /// True while the expected submitters are still missing.
    pub(crate) fn missing(&self) -> bool {
        self.submitted < self.expect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_micros(100);

    /// Runs `batches` closed-loop batches of `n` ops: written in `write_us`, refilled in
    /// `refill_us` after each acknowledgement.
    fn run(
        cw: &mut CommitWait,
        t: &mut Instant,
        batches: u32,
        n: usize,
        write_us: u64,
        refill_us: u64,
    ) {
        for _ in 0..batches {
            *t += Duration::from_micros(write_us);
            cw.acked(n, Duration::from_micros(write_us), *t);
            for i in 0..n as u64 {
                cw.submitted(|| *t + Duration::from_micros(refill_us * (i + 1) / n as u64));
            }
            *t += Duration::from_micros(refill_us);
        }
    }

    #[test]
    fn waits_when_refilling_is_cheap_compared_to_the_write() {
        let mut cw = CommitWait::default();
        let mut t = Instant::now();
        run(&mut cw, &mut t, 20, 16, 180, 60);
        cw.acked(16, Duration::from_micros(180), t);
        assert!(cw.should_wait(LIMIT), "{cw:?}");
    }

    #[test]
    fn splits_when_refilling_costs_as_much_as_the_write() {
        let mut cw = CommitWait::default();
        let mut t = Instant::now();
        run(&mut cw, &mut t, 20, 64, 150, 155);
        cw.acked(64, Duration::from_micros(150), t);
        assert!(!cw.should_wait(LIMIT), "{cw:?}");
    }

    #[test]
    fn submitters_that_stay_away_stop_the_waiting() {
        let mut cw = CommitWait::default();
        let mut t = Instant::now();
        run(&mut cw, &mut t, 5, 16, 180, 60);
        // 16 were acknowledged but only 4 come back from now on: every wait times out.
        for _ in 0..20 {
            t += Duration::from_micros(180);
            cw.acked(16, Duration::from_micros(180), t);
            for _ in 0..4 {
                cw.submitted(|| t);
            }
            if cw.should_wait(LIMIT) {
                cw.timed_out();
            }
        }
        t += Duration::from_micros(180);
        cw.acked(16, Duration::from_micros(180), t);
        assert!(cw.missing());
        assert!(!cw.should_wait(LIMIT), "{cw:?}");
    }

    #[test]
    fn a_lone_submitter_never_waits() {
        let mut cw = CommitWait::default();
        let t = Instant::now();
        assert!(!cw.should_wait(LIMIT), "nothing acknowledged yet");
        cw.submitted(|| t);
        cw.acked(1, Duration::from_micros(150), t);
        assert!(cw.should_wait(LIMIT), "its resubmission is expected");
        assert!(
            cw.submitted(|| t),
            "the one expected resubmission completes the batch"
        );
        assert!(!cw.should_wait(LIMIT));
    }

    #[test]
    fn a_zero_limit_disables_waiting() {
        let mut cw = CommitWait::default();
        let t = Instant::now();
        cw.submitted(|| t);
        cw.acked(1, Duration::from_micros(150), t);
        assert!(!cw.should_wait(Duration::ZERO));
    }
}

//! The progress task of a context: spin (yielding) after activity, then block on the CQ wait fd
//! or poll with back-off. Numbers behind each choice are in the comments and the crate doc.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CtxInner;

/// Yields to the runtime by waking itself: the task goes to the back of the run queue, so every
/// task woken by the completions just processed runs first. Unlike `tokio::task::yield_now` (which
/// defers the wake-up until the I/O driver has been polled, an `epoll_wait` syscall per call) the
/// runtime polls its driver only every `event_interval` ticks: measured on shm, 8 B at 1 in
/// flight, this is the difference between a yield per spin iteration costing ~1 µs and ~50 ns.
struct SpinYield(bool);

impl std::future::Future for SpinYield {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// First back-off sleep of a provider without wait fd (after the spin window).
const POLL_BACKOFF_MIN: Duration = Duration::from_micros(10);
/// Back-off sleeps double up to this, then the loop sleeps 1 ms at a time on tokio's timer.
const POLL_BACKOFF_MAX: Duration = Duration::from_micros(640);

/// How long a sleeping loop may sleep: `max_ms`, or less when a pending RPC's deadline is sooner
/// (the loop fails it then, so it must be awake).
fn sleep_for(inner: &CtxInner, now: Instant, max_ms: u64) -> Duration {
    let max = Duration::from_millis(max_ms);
    inner.until_next_deadline(now).map_or(max, |d| d.min(max))
}

pub(super) async fn progress_loop(inner: Arc<CtxInner>) {
    // The wait fd is registered with tokio's reactor only while the loop sleeps (see below), so
    // it is just checked for here.
    let afd = inner.t.wait_fd().map(|_| ());
    let spin = inner.cfg.spin;
    let burst = inner.cfg.spin_burst;
    let yield_after = inner.cfg.spin_yield_after;
    // Empty CQ polls in a row, without clock reads or a pass through the scheduler, before the
    // bookkeeping and the yield (`ProviderCaps::tight_polls`): the poll period decides how long
    // an arriving message waits to be noticed, half a period on average. shm, 8 B at 1 in
    // flight: a loop iteration took 254 ns on the server and 381 ns on the client when each poll
    // went through the whole loop.
    let tight_polls = inner.cfg.provider.caps().tight_polls.max(1);
    // Pause hints before each of those polls (`ProviderCaps::poll_pauses`: over shm back-to-back
    // polls slow the peer's sends to us).
    let pauses = inner.cfg.poll_pauses;
    let mut last = Instant::now();
    // After a timed-out sleep that found nothing, go straight back to sleep (no spin) so an idle
    // context costs a wake-up per timeout, not a spin window per wake-up.
    let mut idle = false;
    let mut backoff = POLL_BACKOFF_MIN;
    let mut next_check = Instant::now() + super::liveness::CHECK_EVERY;
    while !inner.shutdown.load(Ordering::Relaxed) {
        let n = inner.progress_once();
        if n > 0 {
            // Tasks woken by these completions (a reply's caller) run before the bookkeeping
            // below, which then happens while they wait for their next reply. shm, 8 B at 1 in
            // flight: a reply reached its caller 215 ns after it was decoded with the bookkeeping
            // first, 185 ns after.
            SpinYield(false).await;
        }
        let now = Instant::now();
        inner.expire_rpcs(inner.tick(now));
        if now >= next_check {
            next_check = now + super::liveness::CHECK_EVERY;
            inner.measure_wall_offset();
            inner.check_liveness(now);
        }
        if inner.kicked.swap(false, Ordering::AcqRel) {
            // Something was just sent: its completion or reply is coming, spin for it.
            last = now;
            idle = false;
            backoff = POLL_BACKOFF_MIN;
        }
        if n > 0 {
            last = now;
            idle = false;
            backoff = POLL_BACKOFF_MIN;
            continue;
        }
        // Without a wait fd (shm) a context with anything outstanding keeps polling: the peer may
        // be reading or writing our memory (shm moves large RMA in segments that only advance
        // when the target polls, and they produce no completion here). Backing off there made
        // 1 MiB BULK_GET at 4 in flight take 0.5-3 ms per RPC instead of ~0.2 ms.
        let in_window = !idle && now.duration_since(last) < spin;
        if in_window || (afd.is_none() && inner.has_outstanding(now)) {
            // Tight burst: poll the CQ without going through the scheduler (a tokio yield costs an
            // epoll_wait(0) syscall). No task of this runtime can become ready meanwhile except
            // through a completion, which ends the burst at once.
            let mut got = 0;
            for _ in 0..tight_polls {
                for _ in 0..pauses {
                    std::hint::spin_loop();
                }
                got = inner.progress_once();
                if got > 0 {
                    break;
                }
            }
            let burst_end = now + burst;
            while got == 0 && !burst.is_zero() && Instant::now() < burst_end {
                std::hint::spin_loop();
                got = inner.progress_once();
            }
            if got > 0 {
                last = Instant::now();
                SpinYield(false).await;
                continue;
            }
            // Still nothing: let timers and other tasks run and, after `spin_yield_after` (5 µs)
            // of fruitless spinning, give the core away (sched_yield) on every poll so another
            // process pinned to the same core runs. Measured (same run, 8 B lone server / 64 B two
            // servers on one core, 1 in flight, RPC/s): yield on every poll: shm 9.5k / 13.4k,
            // tcp 29.8k / 29.9k; after 5 µs: shm 117k / 78k, tcp 37.7k / 24.7k; after 20 µs:
            // shm 22.5k / 2.9k; never: shm 42k / 3.3k, tcp 27.5k / 2.2k (co-located servers
            // starve each other; yielding at once hands the core to any CPU hog on a busy VM).
            // A context waiting for its own replies or transfers keeps the core (a yield there
            // hands it to any runnable process for a whole time slice: ms-long outliers under
            // load); one that is only lingering after activity lets co-located servers run.
            if yield_after.is_some_and(|a| now.duration_since(last) >= a)
                && !inner.has_outstanding(now)
            {
                std::thread::yield_now();
            }
            SpinYield(false).await;
            continue;
        }
        inner.expire_holds(now);
        inner.sleeping.store(true, Ordering::SeqCst);
        let mut kicked = false;
        match &afd {
            Some(()) => {
                if inner.t.try_wait() {
                    // Register the wait fd for this sleep only: while it sits in tokio's epoll
                    // set, every packet also runs that epoll's wake-up callback, busy or not.
                    match crate::transport::ofi::async_wait_fd(&inner.t) {
                        Some(Ok(afd)) => {
                            tokio::select! {
                                r = afd.readable() => { if let Ok(mut g) = r { g.clear_ready() } kicked = true; }
                                _ = inner.wake.notified() => kicked = true,
                                _ = tokio::time::sleep(sleep_for(&inner, now, 100)) => {}
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "cannot watch the CQ wait fd; sleeping 1 ms");
                            tokio::select! {
                                _ = inner.wake.notified() => kicked = true,
                                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                            }
                        }
                        None => {}
                    }
                } else {
                    kicked = true;
                }
            }
            None if backoff < POLL_BACKOFF_MAX => {
                // No wait fd (shm): poll with back-off. Short sleeps block this thread (at most
                // POLL_BACKOFF_MAX) because tokio's timer cannot sleep below 1 ms.
                std::thread::sleep(backoff);
                backoff *= 2;
                inner.tick(Instant::now());
                inner.sleeping.store(false, Ordering::SeqCst);
                idle = true;
                SpinYield(false).await;
                continue;
            }
            None => {
                tokio::select! {
                    _ = inner.wake.notified() => kicked = true,
                    _ = tokio::time::sleep(sleep_for(&inner, now, 1)) => {}
                }
            }
        }
        // The loop's clock reading is fresh again before senders stop reading the clock.
        last = Instant::now();
        inner.tick(last);
        inner.sleeping.store(false, Ordering::SeqCst);
        idle = !kicked;
        if kicked {
            backoff = POLL_BACKOFF_MIN;
        }
    }
    tracing::debug!(rank = inner.rank, tag = inner.tag, "progress loop stopped");
}

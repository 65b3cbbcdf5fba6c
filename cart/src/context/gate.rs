//! A fair counting gate for RPC flow control (per-endpoint credits, the context quota).
//!
//! Same contract as a FIFO semaphore (a caller that has to wait is served in arrival order, a
//! newcomer never overtakes a waiter), but taking and returning a permit is one atomic operation
//! when nobody waits. tokio's `Semaphore` locks its waiter list on every release; with the two
//! gates every RPC passes, that cost ~70 ns per 8 B round trip (`examples/ctx_overhead`: 1,360-
//! 1,380 ns with both, 1,300-1,305 ns without).
//!
//! `avail` = free permits minus waiters. A release that finds it negative hands its permit to
//! the oldest waiter; if that waiter has not queued itself yet (it decremented `avail` but has not
//! taken the lock), the permit is parked in `handoff` and the next caller to queue takes it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The gate.
#[derive(Debug)]
pub(crate) struct Gate {
    avail: AtomicI64,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiters: VecDeque<oneshot::Sender<()>>,
    handoff: u64,
}

/// A permit; returned to its gate on drop.
#[derive(Debug)]
pub(crate) struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A queued caller; if it is dropped after a permit was handed to it but before it took it, the
/// permit is passed on instead of being lost.
struct Waiting<'a> {
    gate: &'a Gate,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

fn lock(m: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    /// A gate with `n` permits.
    pub(crate) fn new(n: u32) -> Arc<Gate> {
        Arc::new(Gate {
            avail: AtomicI64::new(i64::from(n)),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Takes a permit, waiting in FIFO order when none is free. Dropping the future while it waits
    /// gives up its place (a permit handed to it meanwhile goes to the next waiter).
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        if self.avail.fetch_sub(1, Ordering::AcqRel) > 0 {
            return Permit(self);
        }
        let rx = {
            let mut q = lock(&self.queue);
            if q.handoff > 0 {
                q.handoff -= 1;
                return Permit(self);
            }
            let (tx, rx) = oneshot::channel();
            q.waiters.push_back(tx);
            rx
        };
        let mut w = Waiting {
            gate: self,
            rx: Some(rx),
        };
        if let Some(rx) = w.rx.as_mut() {
            // A sender is never dropped unsent while its receiver lives (releases only skip
            // waiters that gave up), so an error here cannot happen; treat it as granted.
            let _ = rx.await;
        }
        w.rx = None;
        Permit(self)
    }

    /// Takes a permit if one is free right now (never when callers wait: they come first). The
    /// caller owns it apart from any guard and returns it with [`Gate::give_back`] (RPCs completed
    /// by a callback keep theirs in `send::Permits`, which needs no reference on the gate).
    pub(crate) fn try_take(&self) -> bool {
        let mut cur = self.avail.load(Ordering::Acquire);
        while cur > 0 {
            match self.avail.compare_exchange_weak(
                cur,
                cur - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
        false
    }

    /// Returns a permit taken with [`Gate::try_take`] or kept from [`Gate::acquire`] (forgotten
    /// guard).
    pub(crate) fn give_back(&self) {
        self.release();
    }

    fn release(&self) {
        let mut prev = self.avail.fetch_add(1, Ordering::AcqRel);
        while prev < 0 {
            let mut q = lock(&self.queue);
            let Some(tx) = q.waiters.pop_front() else {
                // The waiter decremented `avail` but has not queued yet: it takes this on arrival.
                q.handoff += 1;
                return;
            };
            drop(q);
            if tx.send(()).is_ok() {
                return;
            }
            // That waiter gave up: its place in `avail` is returned, and this permit goes on to
            // the next waiter, if any.
            prev = self.avail.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Free permits (negative: callers waiting). For tests and diagnostics.
    #[cfg(test)]
    pub(crate) fn available(&self) -> i64 {
        self.avail.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn permits_are_limited_and_returned() {
        let g = Gate::new(2);
        let a = g.acquire().await;
        let b = g.acquire().await;
        assert_eq!(g.available(), 0);
        let mut third = Box::pin(g.acquire());
        assert!(
            futures_poll(&mut third).is_none(),
            "a third permit out of two"
        );
        drop(a);
        let c = futures_poll(&mut third).expect("the released permit goes to the waiter");
        drop((b, c));
        assert_eq!(g.available(), 2);
    }

    #[tokio::test]
    async fn waiters_are_served_in_arrival_order_and_newcomers_do_not_overtake() {
        let g = Gate::new(1);
        let held = g.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (g, order) = (g.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = g.acquire().await;
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(p);
            }));
            // Let task i queue before task i+1 starts.
            tokio::task::yield_now().await;
        }
        drop(held);
        // A newcomer arriving while all five wait must queue behind them.
        let late = g.acquire().await;
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        drop(late);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(g.available(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_lose_a_permit() {
        let g = Gate::new(1);
        let held = g.acquire().await;
        let mut w1 = Box::pin(g.acquire());
        assert!(futures_poll(&mut w1).is_none());
        let mut w2 = Box::pin(g.acquire());
        assert!(futures_poll(&mut w2).is_none());
        drop(w1); // gives up its place
        drop(held);
        let p = futures_poll(&mut w2).expect("the permit skips the cancelled waiter");
        drop(p);
        assert_eq!(g.available(), 1);
        // And the gate still hands out exactly one permit.
        let p = g.acquire().await;
        let mut w3 = Box::pin(g.acquire());
        assert!(futures_poll(&mut w3).is_none());
        drop(p);
        drop(futures_poll(&mut w3).expect("served"));
    }

    #[tokio::test]
    async fn a_waiter_dropped_after_being_served_passes_the_permit_on() {
        let g = Gate::new(1);
        let held = g.acquire().await;
        let mut w1 = Box::pin(g.acquire());
        assert!(futures_poll(&mut w1).is_none());
        let mut w2 = Box::pin(g.acquire());
        assert!(futures_poll(&mut w2).is_none());
        drop(held); // handed to w1, which never looks at it again
        drop(w1);
        drop(futures_poll(&mut w2).expect("w1's permit reached w2"));
        assert_eq!(g.available(), 1);
    }

    #[tokio::test]
    async fn taken_permits_count_like_guarded_ones_and_try_never_jumps_the_queue() {
        let g = Gate::new(2);
        assert!(g.try_take());
        std::mem::forget(g.acquire().await); // kept without its guard
        assert!(!g.try_take());
        let mut w = Box::pin(g.acquire());
        assert!(futures_poll(&mut w).is_none());
        g.give_back(); // goes to the waiter, not to a later try
        assert!(!g.try_take());
        let p = futures_poll(&mut w).expect("served");
        drop(p);
        g.give_back();
        assert_eq!(g.available(), 2);
    }

    #[test]
    fn threads_never_exceed_the_limit_and_all_finish() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let g = Gate::new(3);
            let inside = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..32 {
                let (g, inside, max) = (g.clone(), inside.clone(), max.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..200 {
                        let p = g.acquire().await;
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        if i % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(p);
                    }
                }));
            }
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(60), t)
                    .await
                    .expect("no caller starves")
                    .unwrap();
            }
            assert!(max.load(Ordering::SeqCst) <= 3);
            assert_eq!(g.available(), 3);
        });
    }

    /// Polls a future once with a no-op waker.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}

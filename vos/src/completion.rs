//! A one-shot result slot that is both a `Future` (for an async engine loop with many updates in
//! flight) and blockable with [`Completion::wait`] (for simple callers and tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

struct Slot<T> {
    state: Mutex<(Option<T>, Option<Waker>)>,
    cv: Condvar,
}

/// The pending result of a vos operation.
pub struct Completion<T> {
    slot: Arc<Slot<T>>,
}

/// The producer side; completing twice is impossible (consumes self).
pub(crate) struct Completer<T> {
    slot: Arc<Slot<T>>,
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Completion")
    }
}

pub(crate) fn pair<T>() -> (Completer<T>, Completion<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new((None, None)),
        cv: Condvar::new(),
    });
    (Completer { slot: slot.clone() }, Completion { slot })
}

impl<T> Completion<T> {
    /// An already-finished completion.
    pub fn ready(v: T) -> Self {
        let (c, f) = pair();
        c.complete(v);
        f
    }

    /// Blocks the calling thread until the result is available.
    pub fn wait(self) -> T {
        let mut g = self.slot.state.lock();
        loop {
            if let Some(v) = g.0.take() {
                return v;
            }
            self.slot.cv.wait(&mut g);
        }
    }

    /// True once the result is available.
    pub fn is_done(&self) -> bool {
        self.slot.state.lock().0.is_some()
    }
}

impl<T> Completer<T> {
    pub fn complete(self, v: T) {
        let w = {
            let mut g = self.slot.state.lock();
            g.0 = Some(v);
            g.1.take()
        };
        self.slot.cv.notify_all();
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Future for Completion<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut g = self.slot.state.lock();
        if let Some(v) = g.0.take() {
            return Poll::Ready(v);
        }
        g.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

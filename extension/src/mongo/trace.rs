//! What the driver did for one request, told by its own connection-pool events.
//!
//! The driver emits a connection check-out's events from the task that asked for the connection,
//! synchronously. A request's task carries a [`Trace`] (a task-local), and the pool's event
//! handler adds to it: how long the request waited for connections, and how many it checked out.
//! That answers two questions nothing else can: where a request's time went (`Server-Timing`),
//! and whether a write that failed had a connection, and so may have reached the server.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

tokio::task_local! {
    static CURRENT: Arc<Trace>;
}

/// One request's share of the pool's events.
#[derive(Debug)]
pub struct Trace {
    started: Instant,
    /// When the pending check-out began, in µs after `started` (0: none pending).
    checkout_began_us: AtomicU64,
    /// Time spent waiting for connections, in µs.
    waited_us: AtomicU64,
    checkouts: AtomicU32,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            checkout_began_us: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
            checkouts: AtomicU32::new(0),
        }
    }
}

impl Trace {
    /// Runs `future` with this trace as the current one.
    pub fn scope<F: Future>(self: &Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(Arc::clone(self), future)
    }

    /// Connections checked out so far: a write that fails after this grew had its connection,
    /// and its command may have reached the server.
    pub fn checkouts(&self) -> u32 {
        self.checkouts.load(Ordering::Relaxed)
    }

    /// Time spent waiting for pooled connections (establishing one included).
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }

    fn now_us(&self) -> u64 {
        (self.started.elapsed().as_micros() as u64).max(1)
    }

    fn checkout_started(&self) {
        self.checkout_began_us
            .store(self.now_us(), Ordering::Relaxed);
    }

    fn checkout_ended(&self, got_one: bool) {
        let began = self.checkout_began_us.swap(0, Ordering::Relaxed);
        if began > 0 {
            self.waited_us
                .fetch_add(self.now_us().saturating_sub(began), Ordering::Relaxed);
        }
        if got_one {
            self.checkouts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the pool's event handler reports about the current task's request, if it has one.
pub enum PoolStep {
    CheckoutStarted,
    CheckedOut,
    CheckoutFailed,
}

pub fn record(step: PoolStep) {
    let _ = CURRENT.try_with(|trace| match step {
        PoolStep::CheckoutStarted => trace.checkout_started(),
        PoolStep::CheckedOut => trace.checkout_ended(true),
        PoolStep::CheckoutFailed => trace.checkout_ended(false),
    });
}

/// The current request's trace, when the caller runs inside one.
pub fn current() -> Option<Arc<Trace>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pool_steps_count_only_inside_a_traced_task() {
        record(PoolStep::CheckedOut); // outside any trace: ignored
        let trace = Arc::new(Trace::default());
        trace
            .scope(async {
                record(PoolStep::CheckoutStarted);
                tokio::time::sleep(Duration::from_millis(5)).await;
                record(PoolStep::CheckedOut);
                record(PoolStep::CheckoutStarted);
                record(PoolStep::CheckoutFailed);
            })
            .await;
        assert_eq!(trace.checkouts(), 1);
        assert!(trace.waited() >= Duration::from_millis(5));
    }
}

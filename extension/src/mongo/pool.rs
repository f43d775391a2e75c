//! The pool's figures, kept from the driver's own connection-pool (CMAP) events rather than by
//! polling: connections open and checked out, and how long check-outs waited. The same events tell
//! the current request's [`trace`](super::trace) what it waited for.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use mongodb::event::cmap::CmapEvent;
use serde::Serialize;

use super::trace::{self, PoolStep};

/// A check-out that took longer than this found no idle connection: it waited for one to be
/// returned, or for a new one to be opened.
pub const WAITED_CHECKOUT: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
pub struct PoolStats {
    open: AtomicI64,
    created: AtomicI64,
    /// Ids of the connections checked out now. A set, not a counter: the driver reports a
    /// check-in without a check-out when an operation is cancelled mid-checkout.
    checked_out: Mutex<HashSet<u32>>,
    /// Check-outs that waited (see [`WAITED_CHECKOUT`]), and the longest wait, in µs.
    waited: AtomicU64,
    longest_wait_us: AtomicU64,
    /// The same since the last [`PoolStats::take_window`], and the most connections checked
    /// out at once.
    window_waited: AtomicU64,
    window_longest_wait_us: AtomicU64,
    window_peak_in_use: AtomicI64,
}

/// The pool in one metrics window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolWindow {
    pub open: i64,
    pub peak_in_use: i64,
    pub waited: u64,
    pub longest_wait_us: u64,
}

/// The pool's figures at one moment, as `/health` shows them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PoolFigures {
    /// Pooled connections open now (the monitoring connection is not pooled).
    pub open: i64,
    pub in_use: i64,
    /// Pooled connections opened since start.
    pub created: i64,
    pub max_pool_size: u32,
    pub min_pool_size: u32,
    /// Check-outs since start that found no idle connection, and the longest such wait.
    pub waited_checkouts: u64,
    pub longest_wait_us: u64,
}

impl PoolStats {
    /// Called by the driver for every pool event (see [`super::client::client_options`]).
    pub fn on_event(&self, event: CmapEvent) {
        match event {
            CmapEvent::ConnectionCreated(_) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                self.created.fetch_add(1, Ordering::Relaxed);
            }
            CmapEvent::ConnectionClosed(e) => {
                self.open.fetch_sub(1, Ordering::Relaxed);
                self.mark(e.connection_id, false);
            }
            CmapEvent::ConnectionCheckoutStarted(_) => trace::record(PoolStep::CheckoutStarted),
            CmapEvent::ConnectionCheckedOut(e) => {
                trace::record(PoolStep::CheckedOut);
                let in_use = self.mark(e.connection_id, true);
                self.window_peak_in_use.fetch_max(in_use, Ordering::Relaxed);
                if e.duration >= WAITED_CHECKOUT {
                    let us = e.duration.as_micros() as u64;
                    self.waited.fetch_add(1, Ordering::Relaxed);
                    self.longest_wait_us.fetch_max(us, Ordering::Relaxed);
                    self.window_waited.fetch_add(1, Ordering::Relaxed);
                    self.window_longest_wait_us.fetch_max(us, Ordering::Relaxed);
                }
            }
            CmapEvent::ConnectionCheckoutFailed(_) => trace::record(PoolStep::CheckoutFailed),
            CmapEvent::ConnectionCheckedIn(e) => {
                self.mark(e.connection_id, false);
            }
            _ => {}
        }
    }

    /// Marks a connection checked out or in; returns how many are checked out now.
    fn mark(&self, connection_id: u32, out: bool) -> i64 {
        let Ok(mut set) = self.checked_out.lock() else {
            return 0;
        };
        if out {
            set.insert(connection_id);
        } else {
            set.remove(&connection_id);
        }
        set.len() as i64
    }

    /// The window's figures, and a new window.
    pub fn take_window(&self) -> PoolWindow {
        let in_use = self.checked_out.lock().map_or(0, |set| set.len() as i64);
        PoolWindow {
            open: self.open.load(Ordering::Relaxed),
            peak_in_use: self
                .window_peak_in_use
                .swap(in_use, Ordering::Relaxed)
                .max(in_use),
            waited: self.window_waited.swap(0, Ordering::Relaxed),
            longest_wait_us: self.window_longest_wait_us.swap(0, Ordering::Relaxed),
        }
    }

    pub fn figures(&self, (max_pool_size, min_pool_size): (u32, u32)) -> PoolFigures {
        PoolFigures {
            open: self.open.load(Ordering::Relaxed),
            in_use: self.checked_out.lock().map_or(0, |set| set.len() as i64),
            created: self.created.load(Ordering::Relaxed),
            max_pool_size,
            min_pool_size,
            waited_checkouts: self.waited.load(Ordering::Relaxed),
            longest_wait_us: self.longest_wait_us.load(Ordering::Relaxed),
        }
    }
}

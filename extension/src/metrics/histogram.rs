//! Latencies in constant memory, for a window's percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies in log-linear buckets (8 per power of two of microseconds, so within 12.5 %), for
/// a window's percentiles in constant memory; the maximum is kept exactly.
#[derive(Default)]
pub(super) struct LogHistogram {
    counts: BTreeMap<u32, u64>,
    total: u64,
    max_us: u64,
}

impl LogHistogram {
    pub(super) fn observe(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        *self.counts.entry(bucket_of(us)).or_default() += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub(super) fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The `q` quantile: the middle of the bucket it falls in, never above the maximum.
    pub(super) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_bounds(*bucket);
                return Duration::from_micros(((low + high) / 2).min(self.max_us));
            }
        }
        self.max()
    }
}

fn bucket_of(us: u64) -> u32 {
    if us < 8 {
        return us as u32;
    }
    let exp = 63 - us.leading_zeros(); // ≥ 3
    let mantissa = (us >> (exp - 3)) & 7;
    8 + (exp - 3) * 8 + mantissa as u32
}

/// The microseconds a bucket covers, as [low, high).
fn bucket_bounds(bucket: u32) -> (u64, u64) {
    if bucket < 8 {
        return (u64::from(bucket), u64::from(bucket) + 1);
    }
    let exp = (bucket - 8) / 8 + 3;
    let mantissa = u64::from((bucket - 8) % 8);
    let low = (8 + mantissa) << (exp - 3);
    (low, low + (1 << (exp - 3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_microsecond_count_in_order() {
        let mut previous = 0;
        for us in [0u64, 1, 7, 8, 9, 15, 16, 17, 100, 1_000, 65_535, 10_000_000] {
            let bucket = bucket_of(us);
            let (low, high) = bucket_bounds(bucket);
            assert!(low <= us && us < high, "{us} not in [{low}, {high})");
            assert!(bucket >= previous);
            previous = bucket;
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_precision() {
        let mut h = LogHistogram::default();
        for ms in 1..=100u64 {
            h.observe(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1000.0;
        let p99 = h.quantile(0.99).as_secs_f64() * 1000.0;
        assert!((50.0 * 0.88..=50.0 * 1.13).contains(&p50), "{p50}");
        assert!((99.0 * 0.88..=100.0).contains(&p99), "{p99}");
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(LogHistogram::default().quantile(0.5), Duration::ZERO);
    }
}

//! The Prometheus text exposition (version 0.0.4): the families' headers, the latency histogram
//! over the usual buckets, the pool gauges and the data sources' states.

use std::time::Duration;

use crate::mongo::DataSources;

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}

/// The pool gauges and the data sources' states.
pub(super) fn pool_families(out: &mut String, sources: &DataSources) {
    let statuses: Vec<_> = sources
        .all()
        .iter()
        .map(|s| (s.name.clone(), s.status()))
        .collect();
    header(
        out,
        "mongo_sidecar_pool_connections",
        "gauge",
        "Pooled connections to the database, open and checked out.",
    );
    for (name, status) in &statuses {
        out.push_str(&format!(
            "mongo_sidecar_pool_connections{{data_source=\"{name}\",state=\"open\"}} {}\n",
            status.pool.open
        ));
        out.push_str(&format!(
            "mongo_sidecar_pool_connections{{data_source=\"{name}\",state=\"in_use\"}} {}\n",
            status.pool.in_use
        ));
    }
    header(
        out,
        "mongo_sidecar_pool_checkouts_waited_total",
        "counter",
        "Check-outs that found no idle connection and waited for one (over 1 ms).",
    );
    for (name, status) in &statuses {
        out.push_str(&format!(
            "mongo_sidecar_pool_checkouts_waited_total{{data_source=\"{name}\"}} {}\n",
            status.pool.waited_checkouts
        ));
    }
    header(
        out,
        "mongo_sidecar_pool_checkout_wait_max_seconds",
        "gauge",
        "The longest check-out wait since start.",
    );
    for (name, status) in &statuses {
        out.push_str(&format!(
            "mongo_sidecar_pool_checkout_wait_max_seconds{{data_source=\"{name}\"}} {}\n",
            seconds(Duration::from_micros(status.pool.longest_wait_us))
        ));
    }
    header(
        out,
        "mongo_sidecar_data_source_state",
        "gauge",
        "1 for each data source's current state: ready, warming or unavailable.",
    );
    for (name, status) in &statuses {
        for state in ["ready", "warming", "unavailable"] {
            out.push_str(&format!(
                "mongo_sidecar_data_source_state{{data_source=\"{name}\",state=\"{state}\"}} {}\n",
                u8::from(status.status == state)
            ));
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Prometheus' usual latency buckets, in seconds.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A cumulative Prometheus histogram over [`BOUNDS`].
#[derive(Default)]
pub(super) struct Buckets {
    counts: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

impl Buckets {
    pub(super) fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (bound, count) in BOUNDS.iter().zip(self.counts.iter_mut()) {
            if s <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    pub(super) fn write(&self, out: &mut String, name: &str, action: &str) {
        for (bound, count) in BOUNDS.iter().zip(self.counts) {
            out.push_str(&format!(
                "{name}_bucket{{action=\"{action}\",le=\"{bound}\"}} {count}\n"
            ));
        }
        out.push_str(&format!(
            "{name}_bucket{{action=\"{action}\",le=\"+Inf\"}} {}\n",
            self.count
        ));
        out.push_str(&format!("{name}_sum{{action=\"{action}\"}} {}\n", self.sum));
        out.push_str(&format!(
            "{name}_count{{action=\"{action}\"}} {}\n",
            self.count
        ));
    }
}

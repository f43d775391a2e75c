//! What the sidecar did, counted once per request: for CloudWatch (Embedded Metric Format, one
//! record per invocation window, opt-in) and for Prometheus (`GET /metrics`, since start).
//!
//! The request counts come from the pipeline; the pool's figures from the driver's own
//! connection-pool events (`mongo::pool`). Nothing here polls the driver.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::mongo::DataSources;

/// Why a request failed, as the metrics group errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The request was invalid, named an unknown action or route, or the server refused it.
    Client,
    /// No token, a wrong one, or the database refused the user.
    Auth,
    /// The sidecar's policy denied it.
    Policy,
    /// The database could not be reached or failed.
    Database,
    /// The operation ran out of time.
    Timeout,
    /// The sidecar was at its concurrency or connection limit.
    Overload,
}

impl ErrorClass {
    const ALL: [ErrorClass; 6] = [
        ErrorClass::Client,
        ErrorClass::Auth,
        ErrorClass::Policy,
        ErrorClass::Database,
        ErrorClass::Timeout,
        ErrorClass::Overload,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::Client => "client",
            ErrorClass::Auth => "auth",
            ErrorClass::Policy => "policy",
            ErrorClass::Database => "database",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Overload => "overload",
        }
    }

    /// The EMF metric name: `ClientErrors`, `AuthErrors`, ...
    fn emf_name(self) -> &'static str {
        match self {
            ErrorClass::Client => "ClientErrors",
            ErrorClass::Auth => "AuthErrors",
            ErrorClass::Policy => "PolicyErrors",
            ErrorClass::Database => "DatabaseErrors",
            ErrorClass::Timeout => "TimeoutErrors",
            ErrorClass::Overload => "OverloadErrors",
        }
    }
}

/// One answered action request.
#[derive(Clone, Debug)]
pub struct Sample<'a> {
    /// The action's name, or `unknown` for a name that is none.
    pub action: &'static str,
    pub data_source: &'a str,
    pub status: u16,
    pub error: Option<ErrorClass>,
    /// Until the answer's head was ready (a stream's body follows).
    pub elapsed: Duration,
    pub documents: u64,
    pub bytes: u64,
}

/// Where the metrics go besides `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmfSettings {
    pub namespace: String,
    pub function_name: String,
}

pub struct Metrics {
    emf: Option<EmfSettings>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Since start: requests by (action, status), latency by action, errors by class.
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Buckets>,
    errors: BTreeMap<ErrorClass, u64>,
    documents: u64,
    bytes: u64,
    /// The current window, by data source.
    window: BTreeMap<String, Window>,
}

/// One data source's requests in the current window.
#[derive(Default)]
struct Window {
    requests: u64,
    errors: BTreeMap<ErrorClass, u64>,
    latency: LogHistogram,
    documents: u64,
    bytes: u64,
}

impl Metrics {
    pub fn new(emf: Option<EmfSettings>) -> Self {
        Self {
            emf,
            inner: Mutex::default(),
        }
    }

    pub fn emf_enabled(&self) -> bool {
        self.emf.is_some()
    }

    pub fn record(&self, sample: &Sample<'_>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((sample.action, sample.status))
            .or_default() += 1;
        inner
            .latency
            .entry(sample.action)
            .or_default()
            .observe(sample.elapsed);
        if let Some(class) = sample.error {
            *inner.errors.entry(class).or_default() += 1;
        }
        inner.documents += sample.documents;
        inner.bytes += sample.bytes;
        if self.emf.is_none() {
            return;
        }
        let window = inner
            .window
            .entry(sample.data_source.to_owned())
            .or_default();
        window.requests += 1;
        if let Some(class) = sample.error {
            *window.errors.entry(class).or_default() += 1;
        }
        window.latency.observe(sample.elapsed);
        window.documents += sample.documents;
        window.bytes += sample.bytes;
    }

    /// Ends the current window: one EMF record per data source that had requests, written to
    /// stdout (Lambda ships it to CloudWatch Logs, which extracts the metrics). A window with no
    /// requests writes nothing. Returns the records written.
    pub fn flush(&self, sources: &DataSources) -> Vec<String> {
        let Some(emf) = &self.emf else {
            return Vec::new();
        };
        let window = match self.inner.lock() {
            Ok(mut inner) => std::mem::take(&mut inner.window),
            Err(_) => return Vec::new(),
        };
        let mut records = Vec::new();
        for source in sources.all() {
            let pool = source.take_pool_window();
            let Some(w) = window.get(&source.name) else {
                continue;
            };
            records.push(emf_record(emf, &source.name, w, &pool));
        }
        let mut out = std::io::stdout().lock();
        for record in &records {
            let _ = writeln!(out, "{record}");
        }
        let _ = out.flush();
        records
    }

    /// The Prometheus text exposition (version 0.0.4) of everything since start.
    pub fn prometheus(&self, sources: &DataSources) -> String {
        let mut text = String::new();
        let Ok(inner) = self.inner.lock() else {
            return text;
        };
        header(
            &mut text,
            "mongo_sidecar_requests_total",
            "counter",
            "Action requests answered, by action and HTTP status.",
        );
        for ((action, status), n) in &inner.requests {
            text.push_str(&format!(
                "mongo_sidecar_requests_total{{action=\"{action}\",status=\"{status}\"}} {n}\n"
            ));
        }
        header(
            &mut text,
            "mongo_sidecar_request_duration_seconds",
            "histogram",
            "Time to answer an action request, until its answer's head (a stream's body follows).",
        );
        for (action, buckets) in &inner.latency {
            buckets.write(&mut text, "mongo_sidecar_request_duration_seconds", action);
        }
        header(
            &mut text,
            "mongo_sidecar_errors_total",
            "counter",
            "Failed action requests, by class: client, auth, policy, database, timeout, overload.",
        );
        for class in ErrorClass::ALL {
            let n = inner.errors.get(&class).copied().unwrap_or(0);
            text.push_str(&format!(
                "mongo_sidecar_errors_total{{class=\"{}\"}} {n}\n",
                class.label()
            ));
        }
        header(
            &mut text,
            "mongo_sidecar_documents_returned_total",
            "counter",
            "Documents in the answers (streamed ones counted up to their first chunk).",
        );
        text.push_str(&format!(
            "mongo_sidecar_documents_returned_total {}\n",
            inner.documents
        ));
        header(
            &mut text,
            "mongo_sidecar_response_bytes_total",
            "counter",
            "Bytes of the answers (streamed ones counted up to their first chunk).",
        );
        text.push_str(&format!(
            "mongo_sidecar_response_bytes_total {}\n",
            inner.bytes
        ));
        drop(inner);
        pool_families(&mut text, sources);
        text
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}

/// The pool gauges and the data sources' states.
fn pool_families(out: &mut String, sources: &DataSources) {
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

/// One EMF record: the `_aws` metadata naming the metrics, and their values.
fn emf_record(
    emf: &EmfSettings,
    data_source: &str,
    w: &Window,
    pool: &crate::mongo::PoolWindow,
) -> String {
    let ms = |d: Duration| (d.as_micros() as f64 / 1000.0 * 1000.0).round() / 1000.0;
    let mut values: Vec<(&str, &str, Value)> = vec![("Requests", "Count", json!(w.requests))];
    for class in ErrorClass::ALL {
        let n = w.errors.get(&class).copied().unwrap_or(0);
        values.push((class.emf_name(), "Count", json!(n)));
    }
    values.extend([
        (
            "LatencyP50",
            "Milliseconds",
            json!(ms(w.latency.quantile(0.50))),
        ),
        (
            "LatencyP99",
            "Milliseconds",
            json!(ms(w.latency.quantile(0.99))),
        ),
        ("LatencyMax", "Milliseconds", json!(ms(w.latency.max()))),
        ("DocumentsReturned", "Count", json!(w.documents)),
        ("BytesSent", "Bytes", json!(w.bytes)),
        ("PoolOpen", "Count", json!(pool.open)),
        ("PoolCheckedOut", "Count", json!(pool.peak_in_use)),
        ("PoolCheckoutsWaited", "Count", json!(pool.waited)),
        (
            "PoolCheckoutWaitMax",
            "Milliseconds",
            json!(ms(Duration::from_micros(pool.longest_wait_us))),
        ),
    ]);
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut record = Map::new();
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": emf.namespace,
                "Dimensions": [["FunctionName", "DataSource"]],
                "Metrics": definitions,
            }],
        }),
    );
    record.insert("FunctionName".into(), json!(emf.function_name));
    record.insert("DataSource".into(), json!(data_source));
    for (name, _, value) in values {
        record.insert(name.into(), value);
    }
    Value::Object(record).to_string()
}

/// Prometheus' usual latency buckets, in seconds.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A cumulative Prometheus histogram over [`BOUNDS`].
#[derive(Default)]
struct Buckets {
    counts: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

impl Buckets {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (bound, count) in BOUNDS.iter().zip(self.counts.iter_mut()) {
            if s <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn write(&self, out: &mut String, name: &str, action: &str) {
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

/// Latencies in log-linear buckets (8 per power of two of microseconds, so within 12.5 %), for
/// a window's percentiles in constant memory; the maximum is kept exactly.
#[derive(Default)]
struct LogHistogram {
    counts: BTreeMap<u32, u64>,
    total: u64,
    max_us: u64,
}

impl LogHistogram {
    fn observe(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        *self.counts.entry(bucket_of(us)).or_default() += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The `q` quantile: the middle of the bucket it falls in, never above the maximum.
    fn quantile(&self, q: f64) -> Duration {
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

//! What the sidecar did, counted once per request: for CloudWatch (Embedded Metric Format, one
//! record per invocation window, opt-in) and for Prometheus (`GET /metrics`, since start).
//!
//! The request counts come from the pipeline; the pool's figures from the driver's own
//! connection-pool events (`mongo::pool`). Nothing here polls the driver.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::mongo::DataSources;

mod emf;
mod histogram;
mod prometheus;

use emf::emf_record;
use histogram::LogHistogram;
use prometheus::{Buckets, header, pool_families};

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

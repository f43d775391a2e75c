//! mongo-sidecar: a Lambda extension that owns one long-lived MongoDB client per execution
//! environment and serves the Atlas Data API on localhost, so handlers in any runtime share it.
//!
//! [`lifecycle`] runs the process and records each invocation ([`invocation`]); [`http`] is the
//! API; [`mongo`] owns the clients and every call to the driver; [`ejson`] is the Extended JSON
//! boundary; [`metrics`] counts what happened; [`config`], [`policy`] and [`redact`] are the rules
//! around them.

pub mod config;
pub mod ejson;
pub mod http;
pub mod invocation;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod mongo;
pub mod policy;
pub mod redact;
pub mod secrets;

/// Reads the configuration and runs until drained; returns the exit code.
pub async fn run() -> i32 {
    lifecycle::run(config::Config::from_env()).await
}

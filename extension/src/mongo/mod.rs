//! The long-lived clients: one per data source for the life of the execution environment, and
//! the one place a data source's state changes.
//!
//! A [`DataSource`] is warming until its keeper first reaches the server, then ready, or
//! unavailable with the cause. The keeper builds the client (a `mongodb+srv://` name is resolved
//! here, and retried like an unreachable server), probes the server and warms the pool; it probes
//! again whenever an operation finds the server unreachable. [`DataSource::execute`] is the only
//! way to the driver: it waits for readiness and revalidates a quiet connection within the
//! request's budget, runs the operation ([`run`]), and settles the state from the result.

mod cause;
mod client;
pub mod error;
pub mod ops;
mod pool;
pub mod run;
mod sources;
pub mod trace;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bson::doc;
use mongodb::Client;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use client::{
    CONNECT_TIMEOUT, MAX_IDLE_TIME, MAX_POOL_SIZE, MIN_POOL_SIZE, SERVER_SELECTION_TIMEOUT,
};
pub use error::OpError;
pub use pool::{PoolFigures, PoolWindow};
pub use run::{Budget, DocumentStream, Outcome};
pub use sources::{DataSources, UnknownDataSource};

use crate::config::Config;
use cause::describe;
use client::hosts_of;
use error::SourceVerdict;
use ops::{Namespace, Operation};
use pool::PoolStats;
use run::Connection;

/// How long the keeper waits between attempts while the server cannot be reached.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long one revalidation ping may take before its connection is given up as dead.
const REVALIDATE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a data source can serve requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Connecting for the first time.
    Warming,
    Ready,
    /// The last attempt to reach the server failed, for this reason; the keeper is retrying.
    Unavailable(String),
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::Warming => "warming",
            State::Ready => "ready",
            State::Unavailable(_) => "unavailable",
        }
    }
}

/// A data source's state and pool, as `/health` and the metrics show them.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub pool: PoolFigures,
}

/// One configured database.
pub struct DataSource {
    pub name: String,
    connection: OnceLock<Connection>,
    state: watch::Sender<State>,
    pool: Arc<PoolStats>,
    pool_limits: OnceLock<(u32, u32)>,
    /// The monitor's last heartbeat failure, kept by the driver's event handler.
    heartbeat: Arc<Mutex<Option<String>>>,
    /// When the server last answered, in ms since `epoch` (a monotonic clock, which keeps
    /// running while Lambda freezes the environment).
    last_answer_ms: AtomicU64,
    epoch: std::time::Instant,
    revalidate_after: Duration,
    ready_timeout: Duration,
    /// One revalidation at a time; concurrent requests wait for its verdict.
    revalidating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSource")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl DataSource {
    fn new(name: &str, config: &Config) -> Self {
        Self {
            name: name.to_owned(),
            connection: OnceLock::new(),
            state: watch::channel(State::Warming).0,
            pool: Arc::default(),
            pool_limits: OnceLock::new(),
            heartbeat: Arc::default(),
            last_answer_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            revalidate_after: config.revalidate_after,
            ready_timeout: config.ready_timeout,
            revalidating: tokio::sync::Mutex::new(()),
        }
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn status(&self) -> Status {
        let state = self.state();
        let limits = self
            .pool_limits
            .get()
            .copied()
            .unwrap_or((MAX_POOL_SIZE, MIN_POOL_SIZE));
        Status {
            status: state.label(),
            reason: match state {
                State::Unavailable(reason) => Some(reason),
                _ => None,
            },
            pool: self.pool.figures(limits),
        }
    }

    /// The pool's figures for the metrics window that ends now.
    pub fn take_pool_window(&self) -> PoolWindow {
        self.pool.take_window()
    }

    /// Runs an operation: waits for readiness and revalidates within the budget, runs it, and
    /// settles the data source's state from what happened.
    pub async fn execute(
        &self,
        ns: &Namespace,
        op: Operation,
        budget: Budget,
    ) -> Result<Outcome, OpError> {
        let connection = self.ready(budget).await?;
        self.revalidate(connection, budget.deadline).await;
        let result = connection.run(ns, op, budget).await;
        match &result {
            Ok(_) => self.mark_answered(),
            Err(err) => self.settle(err),
        }
        result
    }

    /// The connection, once ready. While warming this waits, within the budget and at most the
    /// ready timeout; while unavailable it answers at once, so a handler fails fast.
    async fn ready(&self, budget: Budget) -> Result<&Connection, OpError> {
        let mut state = self.state();
        if state == State::Warming {
            let until = budget.deadline.min(Instant::now() + self.ready_timeout);
            let mut rx = self.state.subscribe();
            state =
                match tokio::time::timeout_at(until, rx.wait_for(|s| *s != State::Warming)).await {
                    Ok(Ok(state)) => state.clone(),
                    _ => State::Warming,
                };
        }
        match (state, self.connection.get()) {
            (State::Ready, Some(connection)) => Ok(connection),
            (State::Unavailable(cause), _) => Err(OpError::Unavailable { cause }),
            _ => Err(OpError::Warming),
        }
    }

    /// After a quiet spell (a Lambda freeze, most likely) a pooled socket may be dead: the
    /// server restarted, or a NAT dropped the flow. A ping finds out before the request's own
    /// operation does, which matters for writes. A ping that fails costs its connection; the
    /// second runs on a fresh one. Best effort, and within the request's deadline: if both fail
    /// the request goes ahead and meets the server's state itself.
    async fn revalidate(&self, connection: &Connection, deadline: Instant) {
        if self.silent_for() < self.revalidate_after {
            return;
        }
        let Ok(_one_at_a_time) = tokio::time::timeout_at(deadline, self.revalidating.lock()).await
        else {
            return;
        };
        if self.silent_for() < self.revalidate_after {
            return;
        }
        let started = Instant::now();
        let admin = connection.client().database("admin");
        for attempt in 1..=2 {
            let until = deadline.min(Instant::now() + REVALIDATE_TIMEOUT);
            match tokio::time::timeout_at(until, admin.run_command(doc! {"ping": 1})).await {
                Ok(Ok(_)) => {
                    self.mark_answered();
                    debug!(target: "mongo_sidecar::mongo", data_source = %self.name, attempt, elapsed_us = started.elapsed().as_micros() as u64, "revalidated after a quiet spell");
                    return;
                }
                Ok(Err(err)) => {
                    debug!(target: "mongo_sidecar::mongo", data_source = %self.name, attempt, error = %describe(&err, None), "revalidation ping failed")
                }
                Err(_) => {
                    debug!(target: "mongo_sidecar::mongo", data_source = %self.name, attempt, "revalidation ping timed out")
                }
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    fn mark_answered(&self) {
        self.last_answer_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = self.last_answer_ms.load(Ordering::Relaxed);
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }

    /// What an operation's failure says about the server.
    fn settle(&self, err: &OpError) {
        match err.verdict() {
            SourceVerdict::Answered => self.mark_answered(),
            SourceVerdict::Unreachable(cause) => self.become_unavailable(&cause),
            SourceVerdict::Unknown => {}
        }
    }

    /// Ready → unavailable: requests fail fast with the cause, and the keeper probes again.
    fn become_unavailable(&self, cause: &str) {
        let changed = self.state.send_if_modified(|state| {
            if *state == State::Ready {
                *state = State::Unavailable(cause.to_owned());
                true
            } else {
                false
            }
        });
        if changed {
            warn!(target: "mongo_sidecar::mongo", data_source = %self.name, cause, "database unreachable; requests get 503 until it answers again");
        }
    }

    /// Starts the keeper for `uri`. Returns at once; connecting happens in the background.
    fn start(self: &Arc<Self>, uri: String, app_name: String) {
        crate::redact::register_uri(&uri);
        let this = Arc::clone(self);
        tokio::spawn(async move { this.keep(uri, app_name).await });
    }

    /// Builds the client, then probes and warms it, and probes again whenever the source is
    /// found unavailable. Every failure is retried every second, with its cause on record.
    async fn keep(self: Arc<Self>, uri: String, app_name: String) {
        let hosts = hosts_of(&uri);
        let connection = loop {
            let built = client::build(
                &uri,
                &app_name,
                Arc::clone(&self.pool),
                Arc::clone(&self.heartbeat),
            )
            .await;
            match built.and_then(|b| {
                let limits = (
                    b.options.max_pool_size.unwrap_or(MAX_POOL_SIZE),
                    b.options.min_pool_size.unwrap_or(0),
                );
                Client::with_options(b.options)
                    .map(|client| (client, b.defaults, limits))
                    .map_err(|e| describe(&e, None))
            }) {
                Ok((client, defaults, limits)) => {
                    self.pool_limits.set(limits).ok();
                    let connection = Connection::new(client, defaults, Arc::clone(&self.heartbeat));
                    break self.connection.get_or_init(|| connection);
                }
                Err(cause) => self.wait_and_retry(&hosts, cause).await,
            }
        };
        let mut rx = self.state.subscribe();
        loop {
            let started = Instant::now();
            let admin = connection.client().database("admin");
            match admin.run_command(doc! {"hello": 1}).await {
                Ok(hello) => {
                    connection.learn(&hello);
                    self.mark_answered();
                    connection.client().warm_connection_pool().await;
                    let was = self.state.send_replace(State::Ready);
                    if was != State::Ready {
                        info!(target: "mongo_sidecar::mongo", data_source = %self.name, elapsed_ms = started.elapsed().as_millis() as u64, "database ready");
                    }
                    // Sleep until an operation reports the source unavailable again.
                    if rx
                        .wait_for(|s| matches!(s, State::Unavailable(_)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(err) => {
                    let cause = match err.kind.as_ref() {
                        mongodb::error::ErrorKind::ServerSelection { .. } => connection
                            .heartbeat_cause()
                            .unwrap_or_else(|| describe(&err, None)),
                        _ => describe(&err, Some(&hosts)),
                    };
                    self.wait_and_retry(&hosts, cause).await;
                }
            }
        }
    }

    async fn wait_and_retry(&self, hosts: &str, cause: String) {
        warn!(target: "mongo_sidecar::mongo", data_source = %self.name, hosts, cause = %cause, "database unreachable; retrying");
        self.state.send_replace(State::Unavailable(cause));
        tokio::time::sleep(RETRY_INTERVAL).await;
    }

    /// Waits, at most `timeout`, for the first connection.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), OpError> {
        let budget = Budget {
            deadline: Instant::now() + timeout,
            limit: timeout,
        };
        self.ready(budget).await.map(drop)
    }

    /// Closes the client: its connections end now, so the server frees them at once.
    async fn close(&self) {
        if let Some(connection) = self.connection.get() {
            connection.client().clone().shutdown().immediate(true).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_pairs(pairs).expect("valid config")
    }

    #[tokio::test]
    async fn an_unavailable_source_fails_fast_with_its_cause_and_a_server_answer_is_no_verdict() {
        let source = DataSource::new("s", &config(&[("MONGODB_URI", "mongodb://h")]));
        source.state.send_replace(State::Ready);
        source.settle(&OpError::Refused(Box::default()));
        assert_eq!(source.state(), State::Ready);
        source.settle(&OpError::Unavailable {
            cause: "connection refused".into(),
        });
        assert_eq!(
            source.state(),
            State::Unavailable("connection refused".into())
        );
        let budget = Budget {
            deadline: Instant::now() + Duration::from_secs(5),
            limit: Duration::from_secs(5),
        };
        let started = Instant::now();
        let err = source.ready(budget).await.err();
        assert!(
            matches!(err, Some(OpError::Unavailable { cause }) if cause == "connection refused")
        );
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn the_wait_for_a_first_connection_ends_at_the_budget() {
        let source = DataSource::new(
            "s",
            &config(&[
                ("MONGODB_URI", "mongodb://h"),
                ("MONGO_SIDECAR_READY_TIMEOUT_MS", "10000"),
            ]),
        );
        let budget = Budget {
            deadline: Instant::now() + Duration::from_millis(50),
            limit: Duration::from_millis(50),
        };
        let started = Instant::now();
        assert!(matches!(source.ready(budget).await, Err(OpError::Warming)));
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
}

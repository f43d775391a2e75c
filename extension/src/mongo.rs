//! The long-lived clients: one per data source for the life of the execution environment.
//!
//! Each [`DataSource`] owns a `mongodb::Client` tuned for Lambda ([`client_options`]) and a
//! keeper task that connects and warms it in the background, and that re-probes the server
//! whenever the data source is found unavailable, so it recovers without a restart.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mongodb::Client;
use mongodb::bson::doc;
use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::sdam::SdamEvent;
use mongodb::options::{ClientOptions, ConnectionString, ServerMonitoringMode};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::{Config, DataSourceConfig, same_source_name};
use crate::redact::{redact_uri, register_uri, scrub};

/// Pool defaults for one execution environment, applied where the URI is silent.
///
/// Lambda runs one invocation at a time per environment, so a handler needs a connection or
/// two, not the driver's default of 10. With thousands of environments the pool size is what
/// decides whether a traffic spike becomes a connection storm: each environment holds at most
/// `1 monitor + MAX_POOL_SIZE` connections under load, and `1 + MIN_POOL_SIZE` when idle.
pub const MAX_POOL_SIZE: u32 = 4;
/// One connection stays warm, so the first query of an invocation does not pay a handshake.
pub const MIN_POOL_SIZE: u32 = 1;
/// Connections idle longer than this are closed instead of reused. Frozen environments can
/// sit for minutes, and NAT gateways and load balancers drop idle flows silently (350 s on
/// AWS); discarding old sockets at checkout means a thawed environment never writes to one.
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(60);
/// Fail within seconds rather than the driver's 30 s: a Lambda invocation has seconds.
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(3);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the keeper waits between probes while the server cannot be reached.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long one revalidation ping may take before its connection is given up as dead.
const REVALIDATE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a data source can serve requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Connecting for the first time.
    Warming,
    Ready,
    /// The last attempt to reach the server failed; the keeper is retrying.
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

/// Connection counts, kept from the driver's connection-pool events.
#[derive(Debug, Default)]
pub struct PoolStats {
    open: AtomicI64,
    created: AtomicI64,
    /// Ids of the connections checked out now. A set, not a counter: the driver reports a
    /// check-in without a check-out when an operation is cancelled mid-checkout.
    checked_out: std::sync::Mutex<std::collections::HashSet<u32>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolFigures {
    /// Pooled connections open now (the monitoring connection is not pooled).
    pub open: i64,
    pub in_use: i64,
    /// Pooled connections opened since start.
    pub created: i64,
    pub max_pool_size: u32,
    pub min_pool_size: u32,
}

/// One configured database.
#[derive(Debug)]
pub struct DataSource {
    pub name: String,
    client: OnceLock<Client>,
    state: watch::Sender<State>,
    pool: Arc<PoolStats>,
    pool_limits: OnceLock<(u32, u32)>,
    /// When the server last answered, in ms since `epoch` (a monotonic clock, which keeps
    /// running while Lambda freezes the environment).
    last_answer_ms: AtomicU64,
    epoch: Instant,
    revalidate_after: OnceLock<Duration>,
    /// One revalidation at a time; concurrent requests wait for its verdict.
    revalidating: tokio::sync::Mutex<()>,
}

/// Why a request cannot use a data source right now.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database connection is still warming up")]
    Warming,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl DataSource {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            client: OnceLock::new(),
            state: watch::channel(State::Warming).0,
            pool: Arc::default(),
            pool_limits: OnceLock::new(),
            last_answer_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            revalidate_after: OnceLock::new(),
            revalidating: tokio::sync::Mutex::new(()),
        }
    }

    /// Records that the server just answered.
    pub fn mark_answered(&self) {
        self.last_answer_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = self.last_answer_ms.load(Ordering::Relaxed);
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }

    /// After a quiet spell (a Lambda freeze, most likely) a pooled socket may be dead: the
    /// server restarted, or a NAT dropped the flow. A ping finds out before the request's own
    /// operation does, which matters for writes, which a standalone server cannot retry.
    /// A ping that fails costs its connection; the second runs on a fresh one. Best effort:
    /// if both fail, the request goes ahead and meets the server's state itself, so a busy
    /// server is never mistaken for a gone one.
    async fn revalidate(&self, client: &Client) {
        let Some(after) = self.revalidate_after.get() else {
            return;
        };
        if self.silent_for() < *after {
            return;
        }
        let _one_at_a_time = self.revalidating.lock().await;
        if self.silent_for() < *after {
            return;
        }
        let started = Instant::now();
        let admin = client.database("admin");
        for attempt in 1..=2 {
            let ping = admin.run_command(doc! {"ping": 1});
            match tokio::time::timeout(REVALIDATE_TIMEOUT, ping).await {
                Ok(Ok(_)) => {
                    self.mark_answered();
                    debug!(data_source = %self.name, attempt, elapsed_us = started.elapsed().as_micros() as u64, "revalidated after a quiet spell");
                    return;
                }
                Ok(Err(err)) => {
                    debug!(data_source = %self.name, attempt, error = %describe_unreachable(&err), "revalidation ping failed")
                }
                Err(_) => debug!(data_source = %self.name, attempt, "revalidation ping timed out"),
            }
        }
        warn!(data_source = %self.name, "the server did not answer two pings after a quiet spell");
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// The client, once the data source is ready. While it is warming this waits up to
    /// `wait`; while it is unavailable it answers at once, so a handler fails fast.
    pub async fn ready_client(&self, wait: Duration) -> Result<&Client, NotReady> {
        let current = self.state();
        let state = if current == State::Warming {
            let mut rx = self.state.subscribe();
            match tokio::time::timeout(wait, rx.wait_for(|s| *s != State::Warming)).await {
                Ok(Ok(state)) => state.clone(),
                _ => return Err(NotReady::Warming),
            }
        } else {
            // The common case: no subscription, no timer.
            current
        };
        match (state, self.client.get()) {
            (State::Ready, Some(client)) => {
                self.revalidate(client).await;
                Ok(client)
            }
            (State::Unavailable(reason), _) => Err(NotReady::Unavailable(reason)),
            _ => Err(NotReady::Warming),
        }
    }

    /// Reports that an operation could not reach the server, so the keeper probes again and
    /// requests fail fast until it succeeds.
    pub fn mark_unavailable(&self, reason: &str) {
        self.state.send_if_modified(|state| {
            if *state == State::Ready {
                *state = State::Unavailable(reason.to_owned());
                true
            } else {
                false
            }
        });
    }

    pub fn pool_figures(&self) -> PoolFigures {
        let (max_pool_size, min_pool_size) = self
            .pool_limits
            .get()
            .copied()
            .unwrap_or((MAX_POOL_SIZE, MIN_POOL_SIZE));
        PoolFigures {
            open: self.pool.open.load(Ordering::Relaxed),
            in_use: self
                .pool
                .checked_out
                .lock()
                .map_or(0, |set| set.len() as i64),
            created: self.pool.created.load(Ordering::Relaxed),
            max_pool_size,
            min_pool_size,
        }
    }

    /// Builds the client from `uri` and starts the keeper. Returns once the client exists;
    /// connecting happens in the background.
    pub async fn start(self: &Arc<Self>, uri: &str, config: &Config) -> Result<(), String> {
        register_uri(uri);
        self.revalidate_after.set(config.revalidate_after).ok();
        let options = client_options(uri, config, &self.pool).await?;
        self.pool_limits
            .set((
                options.max_pool_size.unwrap_or(MAX_POOL_SIZE),
                options.min_pool_size.unwrap_or(0),
            ))
            .ok();
        let client = Client::with_options(options).map_err(|e| {
            format!(
                "cannot create a client for {}: {}",
                redact_uri(uri),
                scrub(&e.to_string())
            )
        })?;
        self.client.set(client.clone()).ok();
        let this = Arc::clone(self);
        tokio::spawn(async move { this.keep(client).await });
        Ok(())
    }

    /// Connects, warms the pool, and re-probes whenever the source becomes unavailable.
    async fn keep(self: Arc<Self>, client: Client) {
        let mut rx = self.state.subscribe();
        loop {
            let started = std::time::Instant::now();
            match client.database("admin").run_command(doc! {"ping": 1}).await {
                Ok(_) => {
                    self.mark_answered();
                    client.warm_connection_pool().await;
                    let was = self.state.send_replace(State::Ready);
                    if was != State::Ready {
                        info!(
                            data_source = %self.name,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "database ready"
                        );
                    }
                    // Sleep until someone reports the source unavailable again.
                    if rx
                        .wait_for(|s| matches!(s, State::Unavailable(_)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(err) => {
                    let reason = describe_unreachable(&err);
                    warn!(data_source = %self.name, error = %reason, "database unreachable; retrying");
                    self.state.send_replace(State::Unavailable(reason));
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
            }
        }
    }

    /// Closes the client: its connections end now, so the server frees them at once.
    pub async fn close(&self) {
        if let Some(client) = self.client.get() {
            client.clone().shutdown().immediate(true).await;
        }
    }
}

/// A short, credential-free reason for a failed probe.
fn describe_unreachable(err: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind;
    let text = match err.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => {
            "no server answered within the server selection timeout".to_owned()
        }
        ErrorKind::Authentication { .. } => {
            "authentication failed; check the credentials".to_owned()
        }
        ErrorKind::Command(e) => format!("the server answered {} ({})", e.code_name, e.code),
        ErrorKind::Io(e) => format!("network error: {}", e.kind()),
        ErrorKind::DnsResolve { .. } => "the host name could not be resolved".to_owned(),
        _ => "the server could not be reached".to_owned(),
    };
    scrub(&text)
}

/// The driver options for one data source: the URI's own settings win; where it is silent,
/// the Lambda-suited defaults above apply.
pub async fn client_options(
    uri: &str,
    config: &Config,
    pool: &Arc<PoolStats>,
) -> Result<ClientOptions, String> {
    let fail = |e: mongodb::error::Error| {
        format!(
            "cannot use the connection string {}: {}",
            redact_uri(uri),
            scrub(&e.to_string())
        )
    };
    let cs = ConnectionString::parse(uri).map_err(fail)?;
    let set_by_uri = cs.clone();
    let mut options = ClientOptions::parse(cs).await.map_err(fail)?;
    apply_lambda_defaults(&mut options, &set_by_uri, &config.app_name);

    let stats = Arc::clone(pool);
    options.cmap_event_handler = Some(EventHandler::callback(move |event: CmapEvent| {
        let delta = |counter: &AtomicI64, by: i64| {
            counter.fetch_add(by, Ordering::Relaxed);
        };
        match event {
            CmapEvent::ConnectionCreated(_) => {
                delta(&stats.open, 1);
                delta(&stats.created, 1);
            }
            CmapEvent::ConnectionClosed(e) => {
                delta(&stats.open, -1);
                checked_out(&stats, e.connection_id, false);
            }
            CmapEvent::ConnectionCheckedOut(e) => checked_out(&stats, e.connection_id, true),
            CmapEvent::ConnectionCheckedIn(e) => checked_out(&stats, e.connection_id, false),
            _ => {}
        }
    }));
    options.sdam_event_handler = Some(EventHandler::callback(|event: SdamEvent| {
        if let SdamEvent::ServerHeartbeatFailed(e) = event {
            debug!(server = %e.server_address, "heartbeat failed");
        }
    }));
    Ok(options)
}

fn checked_out(stats: &PoolStats, connection_id: u32, out: bool) {
    if let Ok(mut set) = stats.checked_out.lock() {
        if out {
            set.insert(connection_id);
        } else {
            set.remove(&connection_id);
        }
    }
}

/// Fills in what the connection string left unset.
fn apply_lambda_defaults(
    options: &mut ClientOptions,
    set_by_uri: &ConnectionString,
    app_name: &str,
) {
    if set_by_uri.max_pool_size.is_none() {
        options.max_pool_size = Some(MAX_POOL_SIZE);
    }
    if set_by_uri.min_pool_size.is_none() {
        options.min_pool_size =
            Some(MIN_POOL_SIZE.min(options.max_pool_size.unwrap_or(MIN_POOL_SIZE)));
    }
    if set_by_uri.max_idle_time.is_none() {
        options.max_idle_time = Some(MAX_IDLE_TIME);
    }
    if set_by_uri.server_selection_timeout.is_none() {
        options.server_selection_timeout = Some(SERVER_SELECTION_TIMEOUT);
    }
    if set_by_uri.connect_timeout.is_none() {
        options.connect_timeout = Some(CONNECT_TIMEOUT);
    }
    if set_by_uri.app_name.is_none() {
        options.app_name = Some(app_name.to_owned());
    }
    if set_by_uri.retry_reads.is_none() {
        options.retry_reads = Some(true);
    }
    if set_by_uri.retry_writes.is_none() {
        options.retry_writes = Some(true);
    }
    // Polling uses one monitoring connection per server instead of two, inside Lambda and out.
    if set_by_uri.server_monitoring_mode.is_none() {
        options.server_monitoring_mode = Some(ServerMonitoringMode::Poll);
    }
}

/// All configured data sources.
pub struct DataSources {
    sources: Vec<Arc<DataSource>>,
    /// Index of the default data source in `sources`.
    default: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown dataSource {name:?}; the configured data sources are: {known}")]
pub struct UnknownDataSource {
    pub name: String,
    pub known: String,
}

impl DataSources {
    /// Creates every data source in the warming state; [`DataSource::start`] connects them.
    pub fn new(config: &Config) -> Self {
        let sources: Vec<Arc<DataSource>> = config
            .sources()
            .map(|source: &DataSourceConfig| Arc::new(DataSource::new(&source.name)))
            .collect();
        Self {
            default: config.default_source.as_ref().map(|_| 0),
            sources,
        }
    }

    pub fn all(&self) -> &[Arc<DataSource>] {
        &self.sources
    }

    pub fn default_source(&self) -> Option<&Arc<DataSource>> {
        self.default.map(|i| &self.sources[i])
    }

    /// The data source a request's `dataSource` selects. With a single data source every
    /// name selects it, because Data API clients always send one.
    pub fn select(&self, name: Option<&str>) -> Result<&Arc<DataSource>, UnknownDataSource> {
        if let [only] = self.sources.as_slice() {
            return Ok(only);
        }
        let found = match name {
            None => self.default_source(),
            Some(name) => self
                .sources
                .iter()
                .find(|s| same_source_name(&s.name, name)),
        };
        found.ok_or_else(|| UnknownDataSource {
            name: name.unwrap_or_default().to_owned(),
            known: self
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    pub async fn close_all(&self) {
        futures_util::future::join_all(self.sources.iter().map(|s| s.close())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .expect("valid config")
    }

    #[tokio::test]
    async fn lambda_defaults_fill_what_the_uri_leaves_unset() {
        let c = config(&[
            ("MONGODB_URI", "mongodb://h"),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ]);
        let options = client_options("mongodb://h", &c, &Arc::default())
            .await
            .expect("options");
        assert_eq!(options.max_pool_size, Some(MAX_POOL_SIZE));
        assert_eq!(options.min_pool_size, Some(MIN_POOL_SIZE));
        assert_eq!(options.max_idle_time, Some(MAX_IDLE_TIME));
        assert_eq!(
            options.server_selection_timeout,
            Some(SERVER_SELECTION_TIMEOUT)
        );
        assert_eq!(options.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(options.app_name.as_deref(), Some("orders"));
        assert_eq!(options.retry_reads, Some(true));
        assert_eq!(options.retry_writes, Some(true));
        assert_eq!(
            options.server_monitoring_mode,
            Some(ServerMonitoringMode::Poll)
        );
    }

    #[tokio::test]
    async fn the_uri_wins_over_the_defaults() {
        let uri = "mongodb://h/?maxPoolSize=20&minPoolSize=0&appName=mine&serverSelectionTimeoutMS=100&retryWrites=false";
        let c = config(&[("MONGODB_URI", uri)]);
        let options = client_options(uri, &c, &Arc::default())
            .await
            .expect("options");
        assert_eq!(options.max_pool_size, Some(20));
        assert_eq!(options.min_pool_size, Some(0));
        assert_eq!(options.app_name.as_deref(), Some("mine"));
        assert_eq!(
            options.server_selection_timeout,
            Some(Duration::from_millis(100))
        );
        assert_eq!(options.retry_writes, Some(false));
    }

    #[tokio::test]
    async fn aws_iam_authentication_needs_no_credentials_in_the_uri() {
        let uri = "mongodb://cluster.example.net/?authMechanism=MONGODB-AWS&authSource=$external";
        let c = config(&[("MONGODB_URI", uri)]);
        let options = client_options(uri, &c, &Arc::default())
            .await
            .expect("options");
        let credential = options.credential.expect("a credential");
        assert_eq!(
            credential.mechanism,
            Some(mongodb::options::AuthMechanism::MongoDbAws)
        );
        assert_eq!(credential.username, None);
        assert_eq!(credential.source.as_deref(), Some("$external"));
    }

    #[tokio::test]
    async fn aws_iam_session_token_in_the_uri_is_never_printed() {
        let uri = "mongodb://AKIAEXAMPLE:secretkeyvalue1@cluster.example.net/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tokenvalue123";
        let c = config(&[("MONGODB_URI", uri)]);
        let options = client_options(uri, &c, &Arc::default())
            .await
            .expect("options");
        let credential = options.credential.expect("a credential");
        assert_eq!(
            credential.mechanism,
            Some(mongodb::options::AuthMechanism::MongoDbAws)
        );
        assert_eq!(credential.username.as_deref(), Some("AKIAEXAMPLE"));
        let shown = redact_uri(uri);
        assert!(
            !shown.contains("secretkeyvalue1") && !shown.contains("tokenvalue123"),
            "{shown}"
        );
    }

    #[test]
    fn a_single_data_source_answers_to_any_name() {
        let sources = DataSources::new(&config(&[("MONGODB_URI", "mongodb://h")]));
        assert!(sources.select(Some("Cluster0")).is_ok());
        assert!(sources.select(None).is_ok());
    }

    #[test]
    fn with_several_data_sources_an_unknown_name_lists_the_known_ones() {
        let sources = DataSources::new(&config(&[
            ("MONGODB_URI", "mongodb://h"),
            ("MONGODB_URI_ANALYTICS", "mongodb://a"),
        ]));
        assert_eq!(
            sources
                .select(Some("analytics"))
                .map(|s| s.name.as_str())
                .ok(),
            Some("analytics")
        );
        assert_eq!(
            sources
                .select(Some("mongodb-atlas"))
                .map(|s| s.name.as_str())
                .ok(),
            Some("mongodb-atlas")
        );
        assert_eq!(
            sources.select(None).map(|s| s.name.as_str()).ok(),
            Some("mongodb-atlas")
        );
        let err = sources.select(Some("nope")).expect_err("unknown");
        assert!(
            err.to_string().contains("mongodb-atlas, analytics"),
            "{err}"
        );
    }
}

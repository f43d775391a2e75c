//! Building a data source's `mongodb::Client`: the connection string's own settings win; where it
//! is silent, defaults suited to one Lambda execution environment apply. The driver's event
//! handlers feed the pool's figures and the cause of a failing server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::RawDocumentBuf;
use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::sdam::SdamEvent;
use mongodb::options::{ClientOptions, ConnectionString, SelectionCriteria, ServerMonitoringMode};
use tracing::debug;

use super::cause::describe;
use super::pool::PoolStats;
use crate::redact::{redact_uri, scrub};

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

/// What a command needs from the client's settings that `run_command` does not apply by itself:
/// the connection string's read preference, read concern and write concern.
#[derive(Clone, Debug, Default)]
pub struct CommandDefaults {
    pub selection_criteria: Option<SelectionCriteria>,
    pub read_concern: Option<RawDocumentBuf>,
    pub write_concern: Option<RawDocumentBuf>,
    /// `retryWrites=false` in the connection string turns the write retry off.
    pub retry_writes: bool,
}

/// The client's options, and what the event handlers keep.
pub struct Built {
    pub options: ClientOptions,
    pub defaults: CommandDefaults,
}

/// Resolves and parses `uri` (a `mongodb+srv://` name is looked up in DNS here, which is why this
/// can fail after the configuration was found valid), applies the Lambda defaults and wires the
/// event handlers to `pool` and `cause`.
pub async fn build(
    uri: &str,
    app_name: &str,
    pool: Arc<PoolStats>,
    cause: Arc<Mutex<Option<String>>>,
) -> Result<Built, String> {
    let fail = |e: mongodb::error::Error| {
        format!(
            "cannot use the connection string {}: {}",
            redact_uri(uri),
            describe(&e, None)
        )
    };
    let cs = ConnectionString::parse(uri).map_err(fail)?;
    let set_by_uri = cs.clone();
    let mut options = ClientOptions::parse(cs).await.map_err(fail)?;
    apply_lambda_defaults(&mut options, &set_by_uri, app_name);

    options.cmap_event_handler = Some(EventHandler::callback(move |event: CmapEvent| {
        pool.on_event(event)
    }));
    options.sdam_event_handler = Some(EventHandler::callback(move |event: SdamEvent| {
        let Ok(mut last) = cause.lock() else { return };
        match event {
            SdamEvent::ServerHeartbeatFailed(e) => {
                let text = describe(&e.failure, Some(&e.server_address.to_string()));
                debug!(target: "mongo_sidecar::mongo", cause = %text, "heartbeat failed");
                *last = Some(text);
            }
            SdamEvent::ServerHeartbeatSucceeded(_) => *last = None,
            _ => {}
        }
    }));

    let defaults = CommandDefaults {
        selection_criteria: options.selection_criteria.clone(),
        read_concern: options
            .read_concern
            .as_ref()
            .and_then(|rc| bson::to_raw_document_buf(rc).ok()),
        write_concern: options
            .write_concern
            .as_ref()
            .and_then(|wc| bson::to_raw_document_buf(wc).ok())
            .filter(|d| !d.is_empty()),
        retry_writes: options.retry_writes != Some(false),
    };
    Ok(Built { options, defaults })
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

/// The connection string with its credentials hidden, and its hosts for messages.
pub fn hosts_of(uri: &str) -> String {
    let shown = redact_uri(uri);
    let after_scheme = shown
        .split_once("://")
        .map_or(shown.as_str(), |(_, rest)| rest);
    let after_user = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, h)| h);
    scrub(after_user.split(['/', '?']).next().unwrap_or(after_user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    async fn built(uri: &str) -> Built {
        build(uri, "orders", Arc::default(), Arc::default())
            .await
            .expect("options")
    }

    #[tokio::test]
    async fn lambda_defaults_fill_what_the_uri_leaves_unset() {
        let options = built("mongodb://h").await.options;
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
        let b = built("mongodb://h/?maxPoolSize=20&minPoolSize=0&appName=mine&serverSelectionTimeoutMS=100&retryWrites=false&w=majority&readConcernLevel=majority&readPreference=secondaryPreferred").await;
        assert_eq!(b.options.max_pool_size, Some(20));
        assert_eq!(b.options.min_pool_size, Some(0));
        assert_eq!(b.options.app_name.as_deref(), Some("mine"));
        assert_eq!(
            b.options.server_selection_timeout,
            Some(Duration::from_millis(100))
        );
        assert!(!b.defaults.retry_writes);
        assert_eq!(b.defaults.write_concern, Some(rawdoc! {"w": "majority"}));
        assert_eq!(b.defaults.read_concern, Some(rawdoc! {"level": "majority"}));
        assert!(b.defaults.selection_criteria.is_some());
    }

    #[tokio::test]
    async fn aws_iam_authentication_needs_no_credentials_in_the_uri() {
        let options =
            built("mongodb://cluster.example.net/?authMechanism=MONGODB-AWS&authSource=$external")
                .await
                .options;
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
        let credential = built(uri).await.options.credential.expect("a credential");
        assert_eq!(credential.username.as_deref(), Some("AKIAEXAMPLE"));
        let shown = redact_uri(uri);
        assert!(
            !shown.contains("secretkeyvalue1") && !shown.contains("tokenvalue123"),
            "{shown}"
        );
        assert_eq!(hosts_of(uri), "cluster.example.net");
    }
}

//! Configuration, all from environment variables, validated once at start.
//!
//! Every variable is a `const` here and a row in the README's configuration table. Errors name
//! the variable and the value (a connection string only ever redacted) and say what is wrong.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::redact::redact_uri;

mod read;

use read::{Vars, auth, data_sources, limits, listener, metrics, policy};

pub const MONGODB_URI: &str = "MONGODB_URI";
pub const MONGODB_URI_SECRET_ID: &str = "MONGODB_URI_SECRET_ID";
pub const MONGODB_URI_PARAMETER: &str = "MONGODB_URI_PARAMETER";
/// `MONGODB_URI_<NAME>` adds a data source called `<name>`.
pub const MONGODB_URI_PREFIX: &str = "MONGODB_URI_";

pub const DATA_SOURCE: &str = "MONGO_SIDECAR_DATA_SOURCE";
pub const HOST: &str = "MONGO_SIDECAR_HOST";
pub const PORT: &str = "MONGO_SIDECAR_PORT";
pub const SOCKET: &str = "MONGO_SIDECAR_SOCKET";
pub const ALLOW_REMOTE: &str = "MONGO_SIDECAR_ALLOW_REMOTE";
pub const TOKEN: &str = "MONGO_SIDECAR_TOKEN";
pub const AUTH: &str = "MONGO_SIDECAR_AUTH";
pub const READY_TIMEOUT_MS: &str = "MONGO_SIDECAR_READY_TIMEOUT_MS";
pub const MAX_TIME_MS: &str = "MONGO_SIDECAR_MAX_TIME_MS";
pub const DEADLINE_MARGIN_MS: &str = "MONGO_SIDECAR_DEADLINE_MARGIN_MS";
pub const REVALIDATE_AFTER_MS: &str = "MONGO_SIDECAR_REVALIDATE_AFTER_MS";
pub const MAX_BODY_BYTES: &str = "MONGO_SIDECAR_MAX_BODY_BYTES";
pub const MAX_DEPTH: &str = "MONGO_SIDECAR_MAX_DEPTH";
pub const MAX_WRITE_BATCH: &str = "MONGO_SIDECAR_MAX_WRITE_BATCH";
pub const MAX_DOCUMENTS: &str = "MONGO_SIDECAR_MAX_DOCUMENTS";
pub const BATCH_SIZE: &str = "MONGO_SIDECAR_BATCH_SIZE";
pub const MAX_CONCURRENCY: &str = "MONGO_SIDECAR_MAX_CONCURRENCY";
pub const MAX_CONNECTIONS: &str = "MONGO_SIDECAR_MAX_CONNECTIONS";
pub const HEADER_TIMEOUT_MS: &str = "MONGO_SIDECAR_HEADER_TIMEOUT_MS";
pub const BODY_TIMEOUT_MS: &str = "MONGO_SIDECAR_BODY_TIMEOUT_MS";
pub const WRITE_TIMEOUT_MS: &str = "MONGO_SIDECAR_WRITE_TIMEOUT_MS";
pub const READ_ONLY: &str = "MONGO_SIDECAR_READ_ONLY";
pub const ALLOW: &str = "MONGO_SIDECAR_ALLOW";
pub const ALLOW_SERVER_JS: &str = "MONGO_SIDECAR_ALLOW_SERVER_JS";
pub const ALLOW_OUT: &str = "MONGO_SIDECAR_ALLOW_OUT";
pub const ALLOW_MERGE: &str = "MONGO_SIDECAR_ALLOW_MERGE";
pub const METRICS: &str = "MONGO_SIDECAR_METRICS";
pub const METRICS_NAMESPACE: &str = "MONGO_SIDECAR_METRICS_NAMESPACE";
pub const METRICS_PUBLIC: &str = "MONGO_SIDECAR_METRICS_PUBLIC";

/// Set by Lambda; its absence means standalone mode.
pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

// The defaults, each next to its variable in the README's configuration table.

pub const DEFAULT_PORT: u16 = 27080;
pub const DEFAULT_DATA_SOURCE: &str = "mongodb-atlas";
/// How long a request (and init) waits for the first connection.
pub const DEFAULT_READY_TIMEOUT_MS: u64 = 3_000;
/// The longest an operation may run, invocation deadline or not.
pub const DEFAULT_MAX_TIME_MS: u64 = 30_000;
/// Left to the function after an operation, before its deadline.
pub const DEFAULT_DEADLINE_MARGIN_MS: u64 = 200;
/// After this long without an answer from the server, the next request pings first.
pub const DEFAULT_REVALIDATE_AFTER_MS: u64 = 1_000;
/// Lambda's own payload limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
pub const DEFAULT_MAX_DEPTH: usize = 64;
pub const DEFAULT_MAX_WRITE_BATCH: usize = 10_000;
/// 0: no cap on the documents a find or aggregate returns.
pub const DEFAULT_MAX_DOCUMENTS: u64 = 0;
pub const DEFAULT_BATCH_SIZE: u32 = 1_000;
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// An answer the client stops reading is abandoned after this long without progress.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 10_000;
/// The CloudWatch namespace of the EMF metrics.
pub const DEFAULT_METRICS_NAMESPACE: &str = "MongoSidecar";

/// Where the default data source's connection string comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum UriSource {
    /// A plain environment variable.
    Plain(String),
    /// A Secrets Manager secret id or ARN, read at init.
    Secret(String),
    /// An SSM Parameter Store name, read at init with decryption.
    Parameter(String),
}

impl std::fmt::Debug for UriSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(uri) => write!(f, "Plain({})", redact_uri(uri)),
            Self::Secret(id) => write!(f, "Secret({id})"),
            Self::Parameter(name) => write!(f, "Parameter({name})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSourceConfig {
    /// The name requests select it by (`dataSource`); matched case-insensitively, `-` = `_`.
    pub name: String,
    /// The variable it came from, for messages.
    pub variable: String,
    pub uri: UriSource,
}

/// How requests must authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `apiKey` or `Authorization: Bearer` must carry this token.
    Token(String),
    /// No check: set explicitly with `MONGO_SIDECAR_AUTH=none`, or standalone without a token.
    Disabled { explicit: bool },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Disabled { explicit } => write!(f, "Disabled {{ explicit: {explicit} }}"),
        }
    }
}

/// What requests may do, beyond what the database user may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Namespaces requests may touch: `db.coll` or `db.*`. Empty means all.
    pub allow: Vec<String>,
    pub read_only: bool,
    pub allow_server_js: bool,
    pub allow_out: bool,
    pub allow_merge: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_write_batch: usize,
    /// 0 means no cap.
    pub max_documents: u64,
    pub batch_size: u32,
    pub max_concurrency: usize,
    /// Open client connections, idle ones included; more are closed at once.
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The data source a request gets when it names none, or when it is the only one.
    pub default_source: Option<DataSourceConfig>,
    pub named_sources: Vec<DataSourceConfig>,
    pub host: IpAddr,
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub auth: Auth,
    pub ready_timeout: Duration,
    pub max_time: Duration,
    pub deadline_margin: Duration,
    /// A request after this long without an answer from the server pings it first.
    pub revalidate_after: Duration,
    pub limits: Limits,
    pub policy: Policy,
    /// `AWS_LAMBDA_RUNTIME_API`, when running as a Lambda extension.
    pub runtime_api: Option<String>,
    /// Sent to the server as `appName` unless the URI sets one.
    pub app_name: String,
    pub metrics: MetricsConfig,
}

/// What the sidecar reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// CloudWatch Embedded Metric Format records on stdout, in this namespace.
    pub emf_namespace: Option<String>,
    /// `GET /metrics` without the token.
    pub public: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable}={value:?}: {problem}")]
    Invalid {
        variable: String,
        value: String,
        problem: String,
    },
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    fn invalid(variable: &str, value: &str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            variable: variable.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
        }
    }

    /// The Extensions API error type, `Category.Reason`.
    pub fn error_type(&self) -> &'static str {
        "Extension.ConfigInvalid"
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from `(name, value)` pairs; tests pass their own.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars = Vars::new(vars);
        let runtime_api = vars.get(AWS_LAMBDA_RUNTIME_API).map(str::to_owned);
        let (default_source, named_sources) = data_sources(&vars)?;
        let (host, port, socket) = listener(&vars)?;
        Ok(Config {
            default_source,
            named_sources,
            host,
            port,
            socket,
            auth: auth(&vars, runtime_api.is_some())?,
            ready_timeout: vars.ms(READY_TIMEOUT_MS, DEFAULT_READY_TIMEOUT_MS, 0..=600_000)?,
            max_time: vars.ms(MAX_TIME_MS, DEFAULT_MAX_TIME_MS, 1..=3_600_000)?,
            deadline_margin: vars.ms(DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN_MS, 0..=60_000)?,
            revalidate_after: vars.ms(
                REVALIDATE_AFTER_MS,
                DEFAULT_REVALIDATE_AFTER_MS,
                0..=3_600_000,
            )?,
            limits: limits(&vars)?,
            policy: policy(&vars)?,
            metrics: metrics(&vars)?,
            app_name: vars
                .get(AWS_LAMBDA_FUNCTION_NAME)
                .unwrap_or("mongo-sidecar")
                .to_owned(),
            runtime_api,
        })
    }

    /// Reads `(name, value)` pairs given as string slices, for tests.
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    /// Every configured data source, the default first.
    pub fn sources(&self) -> impl Iterator<Item = &DataSourceConfig> {
        self.default_source.iter().chain(&self.named_sources)
    }
}

/// Data source names match case-insensitively, with `-` and `_` the same.
pub fn same_source_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests;

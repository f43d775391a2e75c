//! Configuration, all from environment variables, validated once at start.
//!
//! Every variable is a `const` here and a row in the README's configuration table. Errors name
//! the variable and the value (a connection string only ever redacted) and say what is wrong.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use mongodb::options::ConnectionString;

use crate::redact::redact_uri;

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
        let vars = Vars(vars.into_iter().collect());
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

    /// Every configured data source, the default first.
    pub fn sources(&self) -> impl Iterator<Item = &DataSourceConfig> {
        self.default_source.iter().chain(&self.named_sources)
    }
}

/// The environment, as read once.
struct Vars(BTreeMap<String, String>);

impl Vars {
    /// A variable's value; an empty one counts as unset.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self
            .get(name)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(_) => Err(ConfigError::invalid(
                name,
                self.get(name).unwrap_or_default(),
                "must be true or false",
            )),
        }
    }

    fn num<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let parsed: T = value.trim().parse().map_err(|_| {
            ConfigError::invalid(
                name,
                value,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })?;
        if !range.contains(&parsed) {
            return Err(ConfigError::invalid(
                name,
                value,
                format!("must be from {} to {}", range.start(), range.end()),
            ));
        }
        Ok(parsed)
    }

    fn ms(
        &self,
        name: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.num(name, default, range).map(Duration::from_millis)
    }
}

/// The default data source (`MONGODB_URI`, or a secret or parameter holding it) and the named
/// ones (`MONGODB_URI_<NAME>`).
fn data_sources(
    vars: &Vars,
) -> Result<(Option<DataSourceConfig>, Vec<DataSourceConfig>), ConfigError> {
    let default_name = vars
        .get(DATA_SOURCE)
        .unwrap_or(DEFAULT_DATA_SOURCE)
        .to_owned();
    let mut uri_sources = Vec::new();
    if let Some(uri) = vars.get(MONGODB_URI) {
        validate_uri(MONGODB_URI, uri)?;
        uri_sources.push((MONGODB_URI, UriSource::Plain(uri.to_owned())));
    }
    if let Some(id) = vars.get(MONGODB_URI_SECRET_ID) {
        uri_sources.push((MONGODB_URI_SECRET_ID, UriSource::Secret(id.to_owned())));
    }
    if let Some(name) = vars.get(MONGODB_URI_PARAMETER) {
        uri_sources.push((MONGODB_URI_PARAMETER, UriSource::Parameter(name.to_owned())));
    }
    if uri_sources.len() > 1 {
        let names: Vec<&str> = uri_sources.iter().map(|(v, _)| *v).collect();
        return Err(ConfigError::Conflict(format!(
            "set only one of {MONGODB_URI}, {MONGODB_URI_SECRET_ID} and {MONGODB_URI_PARAMETER}; found {}",
            names.join(", ")
        )));
    }
    let default_source = uri_sources.pop().map(|(variable, uri)| DataSourceConfig {
        name: default_name.clone(),
        variable: variable.to_owned(),
        uri,
    });

    let mut named_sources = Vec::new();
    for (variable, value) in &vars.0 {
        let Some(suffix) = variable.strip_prefix(MONGODB_URI_PREFIX) else {
            continue;
        };
        if variable == MONGODB_URI_SECRET_ID
            || variable == MONGODB_URI_PARAMETER
            || value.is_empty()
        {
            continue;
        }
        if suffix.is_empty()
            || !suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::invalid(
                variable,
                &redact_uri(value),
                "a data source name may only use letters, digits and '_'",
            ));
        }
        validate_uri(variable, value)?;
        let name = suffix.to_ascii_lowercase().replace('_', "-");
        if same_source_name(&name, &default_name) && default_source.is_some() {
            return Err(ConfigError::Conflict(format!(
                "{variable} names the data source {name:?}, which is already the default data source ({DATA_SOURCE})"
            )));
        }
        named_sources.push(DataSourceConfig {
            name,
            variable: variable.clone(),
            uri: UriSource::Plain(value.clone()),
        });
    }
    if default_source.is_none() && named_sources.is_empty() {
        return Err(ConfigError::Missing(format!(
            "no database configured: set {MONGODB_URI} (or {MONGODB_URI_SECRET_ID}, {MONGODB_URI_PARAMETER}, or {MONGODB_URI_PREFIX}<NAME>)"
        )));
    }
    Ok((default_source, named_sources))
}

/// Where to listen: loopback unless explicitly allowed otherwise.
fn listener(vars: &Vars) -> Result<(IpAddr, u16, Option<PathBuf>), ConfigError> {
    let allow_remote = vars.bool(ALLOW_REMOTE, false)?;
    let host = match vars.get(HOST) {
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(value) => {
            let host: IpAddr = value.parse().map_err(|_| {
                ConfigError::invalid(HOST, value, "must be an IP address such as 127.0.0.1")
            })?;
            if !host.is_loopback() && !allow_remote {
                return Err(ConfigError::invalid(
                    HOST,
                    value,
                    format!(
                        "is not a loopback address; anything that reaches the port acts with the database user's rights, so set {ALLOW_REMOTE}=true to allow it"
                    ),
                ));
            }
            host
        }
    };
    let port = vars.num::<u16>(PORT, DEFAULT_PORT, 0..=u16::MAX)?;
    Ok((host, port, vars.get(SOCKET).map(PathBuf::from)))
}

/// The token requests must carry. Every credential read here is registered with the log
/// scrubber, so none can appear in a log line or an error body.
fn auth(vars: &Vars, in_lambda: bool) -> Result<Auth, ConfigError> {
    for secret in [TOKEN, AWS_SESSION_TOKEN, AWS_SECRET_ACCESS_KEY] {
        if let Some(value) = vars.get(secret) {
            crate::redact::register_secret(value);
        }
    }
    match vars.get(AUTH) {
        Some("none") => Ok(Auth::Disabled { explicit: true }),
        Some("token") | None => match (vars.get(TOKEN), vars.get(AWS_SESSION_TOKEN)) {
            (Some(token), _) => Ok(Auth::Token(token.to_owned())),
            (None, Some(session)) if in_lambda => Ok(Auth::Token(session.to_owned())),
            (None, None) if in_lambda => Err(ConfigError::Missing(format!(
                "no token to check requests against: inside Lambda the token is {TOKEN} or else {AWS_SESSION_TOKEN}, and neither is set; set {TOKEN}, or {AUTH}=none to run without one"
            ))),
            (None, _) => Ok(Auth::Disabled { explicit: false }),
        },
        Some(other) => Err(ConfigError::invalid(
            AUTH,
            other,
            "must be \"token\" or \"none\"",
        )),
    }
}

fn limits(vars: &Vars) -> Result<Limits, ConfigError> {
    Ok(Limits {
        max_body_bytes: vars.num(
            MAX_BODY_BYTES,
            DEFAULT_MAX_BODY_BYTES,
            1024..=64 * 1024 * 1024,
        )?,
        max_depth: vars.num(MAX_DEPTH, DEFAULT_MAX_DEPTH, 2..=100)?,
        max_write_batch: vars.num(MAX_WRITE_BATCH, DEFAULT_MAX_WRITE_BATCH, 1..=1_000_000)?,
        max_documents: vars.num(
            MAX_DOCUMENTS,
            DEFAULT_MAX_DOCUMENTS,
            0..=u64::from(u32::MAX),
        )?,
        batch_size: vars.num(BATCH_SIZE, DEFAULT_BATCH_SIZE, 1..=100_000)?,
        max_concurrency: vars.num(MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, 1..=10_000)?,
        max_connections: vars.num(MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS, 1..=65_536)?,
        header_timeout: vars.ms(HEADER_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, 100..=600_000)?,
        body_timeout: vars.ms(BODY_TIMEOUT_MS, DEFAULT_BODY_TIMEOUT_MS, 100..=600_000)?,
        write_timeout: vars.ms(WRITE_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS, 100..=600_000)?,
    })
}

fn metrics(vars: &Vars) -> Result<MetricsConfig, ConfigError> {
    let namespace = vars
        .get(METRICS_NAMESPACE)
        .unwrap_or(DEFAULT_METRICS_NAMESPACE);
    let emf = match vars.get(METRICS).map(str::to_ascii_lowercase).as_deref() {
        None | Some("off") => false,
        Some("emf") => true,
        Some(_) => {
            return Err(ConfigError::invalid(
                METRICS,
                vars.get(METRICS).unwrap_or_default(),
                "must be \"emf\" (CloudWatch Embedded Metric Format) or \"off\"",
            ));
        }
    };
    if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with(':') {
        return Err(ConfigError::invalid(
            METRICS_NAMESPACE,
            namespace,
            "must be a CloudWatch namespace: 1 to 255 characters",
        ));
    }
    Ok(MetricsConfig {
        emf_namespace: emf.then(|| namespace.to_owned()),
        public: vars.bool(METRICS_PUBLIC, false)?,
    })
}

fn policy(vars: &Vars) -> Result<Policy, ConfigError> {
    let allow = match vars.get(ALLOW) {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|ns| validate_namespace_pattern(ns).map(|()| ns.to_owned()))
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(Policy {
        allow,
        read_only: vars.bool(READ_ONLY, false)?,
        allow_server_js: vars.bool(ALLOW_SERVER_JS, false)?,
        allow_out: vars.bool(ALLOW_OUT, false)?,
        allow_merge: vars.bool(ALLOW_MERGE, false)?,
    })
}

/// Data source names match case-insensitively, with `-` and `_` the same.
pub fn same_source_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    norm(a) == norm(b)
}

fn validate_uri(variable: &str, uri: &str) -> Result<(), ConfigError> {
    // Known before anything can print it, so every later message is scrubbed of it.
    crate::redact::register_uri(uri);
    ConnectionString::parse(uri).map(drop).map_err(|err| {
        let reason = match err.kind.as_ref() {
            mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
            _ => "not a valid MongoDB connection string".to_owned(),
        };
        ConfigError::invalid(
            variable,
            &redact_uri(uri),
            format!(
                "not a valid MongoDB connection string: {}",
                crate::redact::scrub(&reason)
            ),
        )
    })
}

fn validate_namespace_pattern(ns: &str) -> Result<(), ConfigError> {
    let valid = match ns.split_once('.') {
        Some((db, coll)) => {
            !db.is_empty()
                && !db.contains('*')
                && !coll.is_empty()
                && (coll == "*" || !coll.contains('*'))
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            ALLOW,
            ns,
            "each entry must be \"db.collection\" or \"db.*\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_apply_when_only_the_uri_is_set() {
        let c = config(&[(MONGODB_URI, "mongodb://localhost:27017")]).expect("valid");
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.auth, Auth::Disabled { explicit: false });
        assert_eq!(c.limits.max_body_bytes, 6 * 1024 * 1024);
        assert!(c.runtime_api.is_none());
        let source = c.default_source.expect("default source");
        assert_eq!(source.name, DEFAULT_DATA_SOURCE);
    }

    #[test]
    fn a_missing_uri_is_an_error_that_names_the_variables() {
        let err = config(&[]).expect_err("no uri");
        assert!(err.to_string().contains(MONGODB_URI), "{err}");
    }

    #[test]
    fn an_invalid_port_names_the_variable_and_the_value() {
        let err = config(&[(MONGODB_URI, "mongodb://h"), (PORT, "eighty")]).expect_err("bad port");
        let text = err.to_string();
        assert!(text.contains(PORT) && text.contains("eighty"), "{text}");
    }

    #[test]
    fn an_invalid_uri_is_reported_without_its_password() {
        let err = config(&[(MONGODB_URI, "mongodb://user:hunter2secret@host:notaport/")])
            .expect_err("bad uri");
        let text = err.to_string();
        assert!(text.contains(MONGODB_URI), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }

    #[test]
    fn named_sources_come_from_prefixed_variables() {
        let c = config(&[
            (MONGODB_URI, "mongodb://a"),
            ("MONGODB_URI_ANALYTICS_EU", "mongodb://b"),
        ])
        .expect("valid");
        assert_eq!(c.named_sources.len(), 1);
        assert_eq!(c.named_sources[0].name, "analytics-eu");
        assert!(same_source_name("Analytics_EU", "analytics-eu"));
    }

    #[test]
    fn only_one_default_uri_source_is_allowed() {
        let err = config(&[(MONGODB_URI, "mongodb://a"), (MONGODB_URI_SECRET_ID, "s")])
            .expect_err("conflict");
        assert!(matches!(err, ConfigError::Conflict(_)));
        let c = config(&[(MONGODB_URI_SECRET_ID, "prod/mongo")]).expect("secret only");
        assert_eq!(
            c.default_source.map(|s| s.uri),
            Some(UriSource::Secret("prod/mongo".into()))
        );
    }

    #[test]
    fn a_remote_host_needs_an_explicit_opt_in() {
        let err = config(&[(MONGODB_URI, "mongodb://a"), (HOST, "0.0.0.0")]).expect_err("remote");
        assert!(err.to_string().contains(ALLOW_REMOTE), "{err}");
        let c = config(&[
            (MONGODB_URI, "mongodb://a"),
            (HOST, "0.0.0.0"),
            (ALLOW_REMOTE, "true"),
        ])
        .expect("allowed");
        assert!(!c.host.is_loopback());
    }

    #[test]
    fn inside_lambda_the_session_token_is_the_default_token() {
        let c = config(&[
            (MONGODB_URI, "mongodb://a"),
            (AWS_LAMBDA_RUNTIME_API, "127.0.0.1:9001"),
            (AWS_SESSION_TOKEN, "session-token"),
        ])
        .expect("valid");
        assert_eq!(c.auth, Auth::Token("session-token".into()));
        let c = config(&[
            (MONGODB_URI, "mongodb://a"),
            (AWS_SESSION_TOKEN, "session-token"),
            (TOKEN, "mine"),
        ])
        .expect("valid");
        assert_eq!(c.auth, Auth::Token("mine".into()));
        let c = config(&[
            (MONGODB_URI, "mongodb://a"),
            (TOKEN, "mine"),
            (AUTH, "none"),
        ])
        .expect("valid");
        assert_eq!(c.auth, Auth::Disabled { explicit: true });
    }

    #[test]
    fn the_allowlist_is_validated() {
        let c =
            config(&[(MONGODB_URI, "mongodb://a"), (ALLOW, "app.users, logs.*")]).expect("valid");
        assert_eq!(c.policy.allow, vec!["app.users", "logs.*"]);
        let err = config(&[(MONGODB_URI, "mongodb://a"), (ALLOW, "app")]).expect_err("invalid");
        assert!(err.to_string().contains(ALLOW));
    }

    #[test]
    fn every_variable_is_documented_in_the_readme() {
        let readme = include_str!("../../README.md");
        let source = include_str!("config.rs");
        let names: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub const "))
            .filter_map(|rest| rest.split('"').nth(1))
            .filter(|name| name.starts_with("MONGO"))
            .collect();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            let documented = readme.contains(&format!("`{name}`"))
                || readme.contains(&format!("`{name}<NAME>`"));
            assert!(
                documented,
                "{name} is not in README.md's configuration table"
            );
        }
    }

    #[test]
    fn booleans_and_numbers_reject_garbage() {
        assert!(config(&[(MONGODB_URI, "mongodb://a"), (READ_ONLY, "maybe")]).is_err());
        assert!(config(&[(MONGODB_URI, "mongodb://a"), (MAX_DEPTH, "1000")]).is_err());
        assert!(config(&[(MONGODB_URI, "mongodb://a"), (MAX_BODY_BYTES, "-1")]).is_err());
    }
}

//! Reading the variables: one small reader per part of the configuration, each naming the
//! variable and the value it refuses.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use mongodb::options::ConnectionString;

use super::*;
use crate::redact::redact_uri;

/// The environment, as read once.
pub(super) struct Vars(BTreeMap<String, String>);

impl Vars {
    pub(super) fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(vars.into_iter().collect())
    }

    /// A variable's value; an empty one counts as unset.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
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

    pub(super) fn ms(
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
pub(super) fn data_sources(
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
pub(super) fn listener(vars: &Vars) -> Result<(IpAddr, u16, Option<PathBuf>), ConfigError> {
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
pub(super) fn auth(vars: &Vars, in_lambda: bool) -> Result<Auth, ConfigError> {
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

pub(super) fn limits(vars: &Vars) -> Result<Limits, ConfigError> {
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

pub(super) fn metrics(vars: &Vars) -> Result<MetricsConfig, ConfigError> {
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

pub(super) fn policy(vars: &Vars) -> Result<Policy, ConfigError> {
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

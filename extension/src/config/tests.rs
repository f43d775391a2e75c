use std::net::Ipv4Addr;

use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_pairs(pairs)
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
    let c = config(&[(MONGODB_URI, "mongodb://a"), (ALLOW, "app.users, logs.*")]).expect("valid");
    assert_eq!(c.policy.allow, vec!["app.users", "logs.*"]);
    let err = config(&[(MONGODB_URI, "mongodb://a"), (ALLOW, "app")]).expect_err("invalid");
    assert!(err.to_string().contains(ALLOW));
}

#[test]
fn every_variable_is_documented_in_the_readme() {
    let readme = include_str!("../../../README.md");
    let source = include_str!("mod.rs");
    let names: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("pub const "))
        .filter_map(|rest| rest.split('"').nth(1))
        .filter(|name| name.starts_with("MONGO"))
        .collect();
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        let documented =
            readme.contains(&format!("`{name}`")) || readme.contains(&format!("`{name}<NAME>`"));
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

#[test]
fn every_default_is_the_one_the_readme_gives_and_the_one_applied() {
    let readme = include_str!("../../../README.md");
    let defaults: &[(&str, String)] = &[
        (PORT, DEFAULT_PORT.to_string()),
        (DATA_SOURCE, DEFAULT_DATA_SOURCE.to_owned()),
        (READY_TIMEOUT_MS, DEFAULT_READY_TIMEOUT_MS.to_string()),
        (MAX_TIME_MS, DEFAULT_MAX_TIME_MS.to_string()),
        (DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN_MS.to_string()),
        (REVALIDATE_AFTER_MS, DEFAULT_REVALIDATE_AFTER_MS.to_string()),
        (MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES.to_string()),
        (MAX_DEPTH, DEFAULT_MAX_DEPTH.to_string()),
        (MAX_WRITE_BATCH, DEFAULT_MAX_WRITE_BATCH.to_string()),
        (MAX_DOCUMENTS, DEFAULT_MAX_DOCUMENTS.to_string()),
        (BATCH_SIZE, DEFAULT_BATCH_SIZE.to_string()),
        (MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY.to_string()),
        (MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS.to_string()),
        (HEADER_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS.to_string()),
        (BODY_TIMEOUT_MS, DEFAULT_BODY_TIMEOUT_MS.to_string()),
        (WRITE_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS.to_string()),
        (METRICS_NAMESPACE, DEFAULT_METRICS_NAMESPACE.to_owned()),
    ];
    for (variable, value) in defaults {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{variable}` |")))
            .unwrap_or_else(|| panic!("{variable} has no row in README.md"));
        let documented = row.split('|').nth(2).unwrap_or_default();
        assert!(
            documented.contains(&format!("`{value}`")),
            "README.md gives {variable} the default {documented:?}, the code {value}"
        );
    }
    let c = config(&[(MONGODB_URI, "mongodb://h")]).expect("valid");
    assert_eq!(c.port, DEFAULT_PORT);
    assert_eq!(
        c.ready_timeout,
        Duration::from_millis(DEFAULT_READY_TIMEOUT_MS)
    );
    assert_eq!(c.max_time, Duration::from_millis(DEFAULT_MAX_TIME_MS));
    assert_eq!(
        c.deadline_margin,
        Duration::from_millis(DEFAULT_DEADLINE_MARGIN_MS)
    );
    assert_eq!(
        c.revalidate_after,
        Duration::from_millis(DEFAULT_REVALIDATE_AFTER_MS)
    );
    let l = &c.limits;
    assert_eq!(
        (
            l.max_body_bytes,
            l.max_depth,
            l.max_write_batch,
            l.max_documents,
            l.batch_size
        ),
        (
            DEFAULT_MAX_BODY_BYTES,
            DEFAULT_MAX_DEPTH,
            DEFAULT_MAX_WRITE_BATCH,
            DEFAULT_MAX_DOCUMENTS,
            DEFAULT_BATCH_SIZE
        )
    );
    assert_eq!(
        (l.max_concurrency, l.max_connections),
        (DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_CONNECTIONS)
    );
    assert_eq!(
        (l.header_timeout, l.body_timeout, l.write_timeout),
        (
            Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            Duration::from_millis(DEFAULT_WRITE_TIMEOUT_MS)
        )
    );
    assert_eq!(c.metrics.emf_namespace, None);
}

#[test]
fn every_token_and_key_is_registered_with_the_log_scrubber() {
    let c = config(&[
        (MONGODB_URI, "mongodb://h"),
        (AWS_LAMBDA_RUNTIME_API, "127.0.0.1:9001"),
        (TOKEN, "sidecar-token-value-1"),
        (AWS_SESSION_TOKEN, "session-token-value-2"),
        (AWS_SECRET_ACCESS_KEY, "secret-key-value-3"),
    ])
    .expect("valid");
    assert_eq!(c.auth, Auth::Token("sidecar-token-value-1".into()));
    let line =
        crate::redact::scrub("sidecar-token-value-1 session-token-value-2 secret-key-value-3");
    assert_eq!(line, "<redacted> <redacted> <redacted>");
}

#[test]
fn metrics_take_emf_or_off_and_a_namespace() {
    let c = config(&[
        (MONGODB_URI, "mongodb://h"),
        (METRICS, "EMF"),
        (METRICS_NAMESPACE, "Shop/Orders"),
    ])
    .expect("valid");
    assert_eq!(c.metrics.emf_namespace.as_deref(), Some("Shop/Orders"));
    let err = config(&[(MONGODB_URI, "mongodb://h"), (METRICS, "statsd")]).expect_err("unknown");
    assert!(err.to_string().contains(METRICS) && err.to_string().contains("statsd"));
}

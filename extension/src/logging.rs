//! Logging that honours Lambda's `AWS_LAMBDA_LOG_LEVEL` and `AWS_LAMBDA_LOG_FORMAT`, and that
//! scrubs every registered secret from every line, panics included.
//!
//! Every line names its subsystem in its target: `mongo_sidecar::lifecycle` (start-up, events,
//! shutdown), `mongo_sidecar::http` (requests and connections), `mongo_sidecar::mongo` (the
//! database), `mongo_sidecar::policy` (denials). At the default level (INFO) a successful request
//! writes nothing; each request's line (action, namespace, status, error code, µs, documents,
//! bytes) is at DEBUG.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::redact::{ScrubbingWriter, scrub};

pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";

/// Lambda's level names (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) as a tracing level.
fn level_filter(level: Option<&str>) -> LevelFilter {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => LevelFilter::TRACE,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some("WARN") => LevelFilter::WARN,
        Some("ERROR" | "FATAL") => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

pub fn init() {
    let level = level_filter(std::env::var(AWS_LAMBDA_LOG_LEVEL).ok().as_deref());
    // Our own events at the chosen level; the libraries' only when they warn.
    let filter = Targets::new()
        .with_default(LevelFilter::WARN.min(level))
        .with_target("mongo_sidecar", level);
    let json = std::env::var(AWS_LAMBDA_LOG_FORMAT).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let writer = || ScrubbingWriter(std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt.json().with_current_span(false)).init();
    } else {
        registry.with(fmt).init();
    }
    std::panic::set_hook(Box::new(|info| {
        let message = scrub(&info.to_string());
        tracing::error!(panic = %message, "panic");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_level_names_map_to_tracing_levels() {
        assert_eq!(level_filter(Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(level_filter(Some("fatal")), LevelFilter::ERROR);
        assert_eq!(level_filter(None), LevelFilter::INFO);
        assert_eq!(level_filter(Some("bogus")), LevelFilter::INFO);
    }
}

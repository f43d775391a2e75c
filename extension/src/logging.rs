//! Logging that honours Lambda's `AWS_LAMBDA_LOG_LEVEL` and `AWS_LAMBDA_LOG_FORMAT`, and that
//! scrubs every registered secret from every line, panics included.

use tracing_subscriber::EnvFilter;

use crate::redact::{ScrubbingWriter, scrub};

pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";

/// Lambda's level names (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) as a tracing directive.
fn level_directive(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}

pub fn init() {
    let level = level_directive(std::env::var(AWS_LAMBDA_LOG_LEVEL).ok().as_deref());
    // Our own events at the chosen level; the libraries' only when they warn.
    let filter = EnvFilter::new(format!("warn,mongo_sidecar={level}"));
    let json = std::env::var(AWS_LAMBDA_LOG_FORMAT).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let writer = || ScrubbingWriter(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.init();
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
        assert_eq!(level_directive(Some("DEBUG")), "debug");
        assert_eq!(level_directive(Some("fatal")), "error");
        assert_eq!(level_directive(None), "info");
        assert_eq!(level_directive(Some("bogus")), "info");
    }
}

//! One action request, top to bottom: who may call, whether there is room, what was asked and in
//! which format, the time it may take, the data source, the operation, the answer. Every failure
//! is an [`ApiError`]; each request is logged once, here.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth;
use super::decode::decode;
use super::error::ApiError;
use super::request;
use super::respond::{self, Sent};
use crate::metrics::{ErrorClass, Sample};
use crate::mongo::ops::Action;
use crate::mongo::trace::Trace;
use crate::mongo::{Budget, DataSource};

/// What the log line, the metrics and `Server-Timing` say about one request.
#[derive(Default)]
struct Report {
    action: Option<Action>,
    namespace: Option<String>,
    source: Option<Arc<DataSource>>,
    sent: Sent,
    /// Time in the data source's `execute` (waits for connections included).
    db: Duration,
}

/// `POST /action/{action}`, start to finish.
pub async fn serve(state: &AppState, action: &str, headers: &HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let trace = Arc::new(Trace::default());
    let mut report = Report::default();
    let result = trace
        .scope(run(state, action, headers, body, &mut report))
        .await;
    let total = started.elapsed();
    let (mut response, error) = match result {
        Ok(response) => {
            tracing::debug!(target: "mongo_sidecar::http", action, namespace = report.namespace.as_deref(), status = response.status().as_u16(), elapsed_us = total.as_micros() as u64, documents = report.sent.documents, bytes = report.sent.bytes, "served");
            (response, None)
        }
        Err(err) => {
            log_failure(action, &report, &err, total);
            let class = err.class();
            (err.into_response(), Some(class))
        }
    };
    state.metrics.record(&Sample {
        action: report.action.map_or("unknown", Action::name),
        data_source: report
            .source
            .as_ref()
            .or_else(|| state.sources.all().first())
            .map_or("", |s| s.name.as_str()),
        status: response.status().as_u16(),
        error,
        elapsed: total,
        documents: report.sent.documents,
        bytes: report.sent.bytes,
    });
    let timing = server_timing(
        trace.waited(),
        report.db.saturating_sub(trace.waited()),
        total,
    );
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

async fn run(
    state: &AppState,
    action: &str,
    headers: &HeaderMap,
    body: Body,
    report: &mut Report,
) -> Result<Response, ApiError> {
    report.action = Action::from_name(action);
    // Who may call, and whether there is room: before anything is read.
    auth::reject_proxied(headers)?;
    auth::check_token(&state.config.auth, headers)?;
    let permit = state.admit()?;

    // What is asked, and in which format.
    let action = report.action.ok_or_else(|| unknown_action(action))?;
    request::check_content_type(headers)?;
    let format = request::response_format(headers);
    let limits = &state.config.limits;
    let bytes =
        request::read_body(headers, body, limits.max_body_bytes, limits.body_timeout).await?;
    let request = decode(action, &bytes, &state.config.policy, limits)?;
    drop(bytes);
    report.namespace = Some(format!(
        "{}.{}",
        request.namespace.database, request.namespace.collection
    ));

    // The time it may take, and where it runs.
    let invocation_deadline = state
        .invocation
        .deadline_for(request::trace_id(headers))
        .await;
    let budget = budget(
        state,
        request.operation.options.max_time,
        invocation_deadline,
    )?;
    let source = state.sources.select(request.data_source.as_deref())?;
    report.source = Some(Arc::clone(source));

    let started = Instant::now();
    let outcome = source
        .execute(&request.namespace, request.operation, budget)
        .await;
    report.db = started.elapsed();

    let (response, sent) = respond::outcome(outcome?, format, limits.max_documents, permit).await?;
    report.sent = sent;
    Ok(response)
}

/// How long an operation may run: the request's maxTimeMS, the configured maximum, and the
/// invocation's deadline less the margin, whichever ends first. Every wait the operation meets
/// (the first connection, revalidation, the pool) comes out of it; what is left is sent to the
/// server as `maxTimeMS`.
fn budget(
    state: &AppState,
    requested: Option<Duration>,
    invocation_deadline: Option<SystemTime>,
) -> Result<Budget, ApiError> {
    let mut limit = state.config.max_time;
    if let Some(requested) = requested {
        limit = limit.min(requested);
    }
    if let Some(deadline) = invocation_deadline {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let usable = remaining.saturating_sub(state.config.deadline_margin);
        if usable.is_zero() {
            return Err(ApiError::timeout(
                "the invocation's deadline leaves no time for the operation",
            ));
        }
        limit = limit.min(usable);
    }
    Ok(Budget {
        deadline: tokio::time::Instant::now() + limit,
        limit,
    })
}

fn unknown_action(name: &str) -> ApiError {
    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ActionNotFound",
        format!(
            "unknown action {name:?}; the actions are {}",
            names.join(", ")
        ),
    )
}

/// A 5xx is the sidecar's or the database's trouble: a warning at the default level. A 4xx is
/// the caller's: a debug line.
fn log_failure(action: &str, report: &Report, err: &ApiError, total: Duration) {
    let namespace = report.namespace.as_deref();
    let elapsed_us = total.as_micros() as u64;
    let status = err.status.as_u16();
    if err.status.is_server_error() {
        tracing::warn!(target: "mongo_sidecar::http", action, namespace, status, error_code = err.error_code, error = %err.message, elapsed_us, "failed");
    } else if err.class() == ErrorClass::Policy {
        tracing::debug!(target: "mongo_sidecar::policy", action, namespace, status, error_code = err.error_code, error = %err.message, elapsed_us, "denied");
    } else {
        tracing::debug!(target: "mongo_sidecar::http", action, namespace, status, error_code = err.error_code, error = %err.message, elapsed_us, "rejected");
    }
}

/// `queue;dur=…, db;dur=…, total;dur=…` in milliseconds with microsecond precision: the time
/// waiting for a pooled connection, the database's share, and the whole request in the sidecar.
fn server_timing(queue: Duration, db: Duration, total: Duration) -> String {
    // Integer arithmetic: exact, and cheaper than formatting floats on every request.
    let [q, d, t] = [queue, db, total].map(|d| d.as_micros());
    format!(
        "queue;dur={}.{:03}, db;dur={}.{:03}, total;dur={}.{:03}",
        q / 1000,
        q % 1000,
        d / 1000,
        d % 1000,
        t / 1000,
        t % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_is_in_milliseconds_with_microsecond_precision() {
        assert_eq!(
            server_timing(
                Duration::from_micros(12),
                Duration::from_micros(412),
                Duration::from_micros(1520)
            ),
            "queue;dur=0.012, db;dur=0.412, total;dur=1.520"
        );
    }
}

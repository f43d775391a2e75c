//! The localhost query API: where a request enters ([`router`]), is checked (auth, limits,
//! [`request`] decoding, the policy in [`actions::parse`]), touches MongoDB
//! ([`actions::execute`]) and is answered ([`respond`]).

pub mod actions;
pub mod auth;
pub mod error;
pub mod json;
pub mod request;
pub mod respond;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mongodb::bson::RawDocumentBuf;
use serde_json::json;
use tokio::sync::Semaphore;

pub use server::{Listeners, serve};

use crate::config::{Config, Limits, MAX_BODY_BYTES, Policy};
use crate::mongo::{DataSources, State as SourceState};
use crate::policy;
use error::ApiError;
use request::ActionBody;

/// The deadline of the invocation being served, from the INVOKE event.
#[derive(Debug, Default)]
pub struct Invocation {
    /// Milliseconds since the Unix epoch; 0 when no invocation has started.
    deadline_ms: AtomicU64,
}

impl Invocation {
    pub fn start(&self, deadline_ms: u64) {
        self.deadline_ms.store(deadline_ms, Ordering::Relaxed);
    }

    /// Time left before the current invocation's deadline. `None` outside an invocation, or
    /// when the recorded deadline has passed: a request that arrives before the sidecar has
    /// seen its INVOKE event must not inherit the previous invocation's deadline.
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (deadline > now).then(|| Duration::from_millis(deadline - now))
    }
}

pub struct AppState {
    pub config: Arc<Config>,
    pub sources: Arc<DataSources>,
    pub invocation: Arc<Invocation>,
    /// Requests in flight beyond this are shed with a 503, never queued without bound.
    permits: Arc<Semaphore>,
    started: std::time::Instant,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        sources: Arc<DataSources>,
        invocation: Arc<Invocation>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.limits.max_concurrency)),
            config,
            sources,
            invocation,
            started: std::time::Instant::now(),
        }
    }

    /// How long an operation may run: the request's maxTimeMS, the configured maximum, and
    /// the invocation's deadline less a margin, whichever ends first.
    pub fn time_budget(&self, requested_ms: Option<u64>) -> Result<Duration, ApiError> {
        let mut budget = self.config.max_time;
        if let Some(ms) = requested_ms {
            budget = budget.min(Duration::from_millis(ms));
        }
        if let Some(remaining) = self.invocation.remaining() {
            let usable = remaining.saturating_sub(self.config.deadline_margin);
            if usable.is_zero() {
                return Err(ApiError::timeout(
                    "the invocation's deadline leaves no time for the operation",
                ));
            }
            budget = budget.min(usable);
        }
        Ok(budget)
    }
}

/// The router. Tests call it directly with `oneshot`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/action/{action}", post(action))
        .route(
            "/app/{app_id}/endpoint/data/v1/action/{action}",
            post(app_action),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such route: actions are POST /action/{name} or POST /app/{appId}/endpoint/data/v1/action/{name}",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "method not allowed: actions take POST, /health takes GET",
    )
    .into_response()
}

/// `GET /health`: 200 when the default data source answers a ping, 503 otherwise; pool
/// figures in both cases.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let mut status = "ready";
    let mut sources = serde_json::Map::new();
    for (i, source) in state.sources.all().iter().enumerate() {
        // Figures first: the health check's own ping would show as a connection in use.
        let pool = source.pool_figures();
        let mut source_status = source.state();
        if source_status == SourceState::Ready {
            // Ready means the last probe worked; a health check asks the server again.
            let ping = async {
                let client = source.ready_client(Duration::ZERO).await.ok()?;
                client
                    .database("admin")
                    .run_command(mongodb::bson::doc! {"ping": 1})
                    .await
                    .ok()
            };
            if tokio::time::timeout(Duration::from_secs(1), ping)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                source.mark_unavailable("the server did not answer a health check ping");
                source_status = source.state();
            }
        }
        if i == 0 && source_status != SourceState::Ready {
            status = source_status.label();
        }
        let mut entry = json!({
            "status": source_status.label(),
            "pool": pool,
        });
        if let SourceState::Unavailable(reason) = &source_status {
            entry["reason"] = json!(reason);
        }
        sources.insert(source.name.clone(), entry);
    }
    let pool = sources.values().next().map(|s| s["pool"].clone());
    let body = json!({
        "status": status,
        "pool": pool,
        "dataSources": sources,
        "invocationActive": state.invocation.remaining().is_some(),
        "uptimeMs": state.started.elapsed().as_millis() as u64,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (code, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if code != StatusCode::OK {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(1));
    }
    response
}

async fn action(
    State(state): State<Arc<AppState>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve_action(&state, &action, &headers, body).await
}

async fn app_action(
    State(state): State<Arc<AppState>>,
    Path((_app_id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve_action(&state, &action, &headers, body).await
}

/// One action request, start to finish; errors are logged here, once.
async fn serve_action(state: &AppState, action: &str, headers: &HeaderMap, body: Body) -> Response {
    let started = std::time::Instant::now();
    let result = run_action(state, action, headers, body).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    match result {
        Ok(response) => {
            tracing::debug!(
                action,
                status = response.status().as_u16(),
                elapsed_us,
                "served"
            );
            response
        }
        Err(err) => {
            if err.status.is_server_error() {
                tracing::warn!(action, status = err.status.as_u16(), error_code = err.error_code, error = %err.message, elapsed_us, "failed");
            } else {
                tracing::debug!(action, status = err.status.as_u16(), error_code = err.error_code, error = %err.message, elapsed_us, "rejected");
            }
            err.into_response()
        }
    }
}

async fn run_action(
    state: &AppState,
    action: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::reject_proxied(headers)?;
    auth::check_token(&state.config.auth, headers)?;
    let permit = Arc::clone(&state.permits).try_acquire_owned().map_err(|_| {
        ApiError::unavailable(
            "Overloaded",
            "the sidecar is at its concurrency limit (MONGO_SIDECAR_MAX_CONCURRENCY); retry shortly",
        )
    })?;
    if !actions::ACTIONS.contains(&action) {
        return Err(actions::unknown_action(action));
    }
    request::check_content_type(headers)?;
    let format = request::response_format(headers);
    let bytes = read_body(state, headers, body).await?;

    let Decoded {
        data_source,
        database,
        collection,
        parsed,
    } = decode_action(action, &bytes, &state.config.policy, &state.config.limits)?;
    drop(bytes);
    let source = Arc::clone(state.sources.select(data_source.as_deref())?);
    let budget = state.time_budget(parsed.max_time_ms)?;
    let deadline = tokio::time::Instant::now() + budget;

    let client = source.ready_client(state.config.ready_timeout).await?;
    let coll = client
        .database(&database)
        .collection::<RawDocumentBuf>(&collection);
    let outcome =
        tokio::time::timeout_at(deadline, actions::execute(parsed.operation, &coll, budget))
            .await
            .map_err(|_| {
                ApiError::timeout(format!(
                    "the operation exceeded its time limit of {} ms",
                    budget.as_millis()
                ))
            })?
            .map_err(|e| {
                // A server error is still an answer: the server is there.
                if error::server_answered(&e) {
                    source.mark_answered();
                }
                mongo_error(&e, &source)
            })?;
    source.mark_answered();

    match outcome {
        actions::Outcome::Document(doc) => respond::document(format, &doc),
        actions::Outcome::Found(doc) => respond::found(format, doc.as_deref()),
        actions::Outcome::Cursor(cursor) => {
            respond::cursor(
                *cursor,
                format,
                deadline,
                state.config.limits.max_documents,
                Some(permit),
                &source,
            )
            .await
        }
    }
}

/// A request body, decoded and checked, ready to run.
pub struct Decoded {
    pub data_source: Option<String>,
    pub database: String,
    pub collection: String,
    pub parsed: actions::Parsed,
}

/// Everything a body goes through before the database: the strict JSON reader, the shared
/// fields, the policy over the whole body, then the action's own fields.
pub fn decode_action(
    action: &str,
    bytes: &[u8],
    policy: &Policy,
    limits: &Limits,
) -> Result<Decoded, ApiError> {
    let value = json::parse(bytes, limits.max_depth).map_err(|e| ApiError::invalid(e.0))?;
    let body = ActionBody::from_value(value)?;
    policy::check_request(
        policy,
        &body.database,
        &body.collection,
        body.fields.as_map(),
    )
    .map_err(|d| ApiError::forbidden(d.0))?;
    let (data_source, database, collection) = (
        body.data_source.clone(),
        body.database.clone(),
        body.collection.clone(),
    );
    let parsed = actions::parse(action, body, policy, limits)?;
    Ok(Decoded {
        data_source,
        database,
        collection,
        parsed,
    })
}

/// Maps a driver error, unwrapping a bulk write's partial-failure report.
fn mongo_error(err: &mongodb::error::Error, source: &crate::mongo::DataSource) -> ApiError {
    let Some(failure) = err.get_custom::<actions::BulkWriteFailure>() else {
        return ApiError::from_mongo(err, source);
    };
    let mut api = ApiError::from_mongo(&failure.source, source);
    api.message = format!(
        "operation {} of the bulk write failed: {}",
        failure.index, api.message
    );
    let applied = RawDocumentBuf::from_document(&failure.applied)
        .ok()
        .and_then(|raw| {
            let mut out = Vec::new();
            crate::ejson::write_document(&mut out, &raw, crate::ejson::OutputMode::Json).ok()?;
            serde_json::from_slice::<serde_json::Value>(&out).ok()
        });
    api.with("failedIndex", json!(failure.index))
        .with("applied", applied.unwrap_or(serde_json::Value::Null))
        .with("details", json!({"failedIndexes": failure.failed_indexes}))
}

/// Reads the body within the size limit and the body read timeout.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("the request body is larger than {limit} bytes ({MAX_BODY_BYTES})"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(body, limit);
    match tokio::time::timeout(state.config.limits.body_timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            "the request body did not arrive in time",
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => {
            let over_limit = std::error::Error::source(&err)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over_limit {
                Err(too_large())
            } else {
                Err(ApiError::invalid("the request body could not be read"))
            }
        }
    }
}

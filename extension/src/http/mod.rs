//! The localhost query API. [`router`] is where a request enters; [`pipeline`] takes an action
//! request from there to its answer, top to bottom; `/health` reports each data source's state.

pub mod action_spec;
pub mod auth;
pub mod decode;
pub mod error;
pub mod fields;
pub mod json;
pub mod pipeline;
pub mod request;
pub mod respond;
mod server;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use server::{Listeners, serve};

use crate::config::Config;
use crate::invocation::Invocation;
use crate::metrics::Metrics;
use crate::mongo::DataSources;
use error::ApiError;

pub struct AppState {
    pub config: Arc<Config>,
    pub sources: Arc<DataSources>,
    pub invocation: Arc<Invocation>,
    pub metrics: Arc<Metrics>,
    /// Requests in flight beyond this are shed with a 503, never queued without bound. A
    /// streamed answer holds its permit until its last chunk (which is why this is not tower's
    /// concurrency limit: that one lets go when the response head is ready).
    permits: Arc<Semaphore>,
    started: std::time::Instant,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        sources: Arc<DataSources>,
        invocation: Arc<Invocation>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.limits.max_concurrency)),
            config,
            sources,
            invocation,
            metrics,
            started: std::time::Instant::now(),
        }
    }

    /// A slot for one more request, or 503 Overloaded at once.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            ApiError::unavailable(
                "Overloaded",
                "the sidecar is at its concurrency limit (MONGO_SIDECAR_MAX_CONCURRENCY); retry shortly",
            )
        })
    }
}

/// The router. Tests call it directly with `oneshot`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/action/{action}", post(action))
        .route(
            "/app/{app_id}/endpoint/data/v1/action/{action}",
            post(app_action),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn action(
    State(state): State<Arc<AppState>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    pipeline::serve(&state, &action, &headers, body).await
}

async fn app_action(
    State(state): State<Arc<AppState>>,
    Path((_app_id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    pipeline::serve(&state, &action, &headers, body).await
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
        "method not allowed: actions take POST, /health and /metrics take GET",
    )
    .into_response()
}

/// `GET /metrics`: the Prometheus text exposition, behind the token unless
/// `MONGO_SIDECAR_METRICS_PUBLIC=true`.
async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !state.config.metrics.public {
        if let Err(err) = auth::check_token(&state.config.auth, &headers) {
            return err.into_response();
        }
    }
    let body = state.metrics.prometheus(&state.sources);
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /health`: each data source's state as its keeper last found it, and its pool; 200 when
/// the default data source is ready, 503 otherwise. It asks the server nothing and changes
/// nothing: a slow probe here must never take the database offline for everybody.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let mut sources = serde_json::Map::new();
    let mut overall = "ready";
    for (i, source) in state.sources.all().iter().enumerate() {
        let status = source.status();
        if i == 0 {
            overall = status.status;
        }
        sources.insert(source.name.clone(), json!(status));
    }
    let pool = sources.values().next().map(|s| s["pool"].clone());
    let body = json!({
        "status": overall,
        "pool": pool,
        "dataSources": sources,
        "invocationActive": state.invocation.active(),
        "uptimeMs": state.started.elapsed().as_millis() as u64,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if overall == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (code, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if code != StatusCode::OK {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    response
}

//! What a request's HTTP envelope says: its content type, the answer's format it accepts, the
//! invocation it belongs to, and its body, read within the size and time limits.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::config::MAX_BODY_BYTES;
use crate::ejson::OutputMode;

/// How a response body is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One JSON object, as the Data API answers.
    Object,
    /// `application/x-ndjson`: one document per line (find and aggregate).
    Lines,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseFormat {
    pub mode: OutputMode,
    pub framing: Framing,
}

impl ResponseFormat {
    /// The same output mode, framed as one object.
    pub fn single_object(self) -> Self {
        Self {
            framing: Framing::Object,
            ..self
        }
    }

    pub fn content_type(&self) -> &'static str {
        match (self.framing, self.mode) {
            (Framing::Lines, _) => "application/x-ndjson",
            (Framing::Object, OutputMode::Ejson | OutputMode::Relaxed) => "application/ejson",
            (Framing::Object, OutputMode::Json) => "application/json",
        }
    }
}

/// Checks `Content-Type` (JSON or EJSON; both read canonical and relaxed Extended JSON).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported("a Content-Type header is required"));
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json" | "application/ejson") => Ok(()),
        _ => Err(unsupported("the Content-Type is not supported")),
    }
}

fn unsupported(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        format!("{why}: send application/json or application/ejson"),
    )
}

/// Picks the response format from `Accept`: `application/ejson` for canonical Extended JSON
/// (`;mode=relaxed` for relaxed), `application/x-ndjson` for one document per line (add
/// `;format=ejson` for EJSON lines, and `;mode=relaxed` for relaxed ones), plain JSON otherwise.
pub fn response_format(headers: &HeaderMap) -> ResponseFormat {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut format = ResponseFormat {
        mode: OutputMode::Json,
        framing: Framing::Object,
    };
    for part in accept.split(',') {
        let mut params = part.split(';');
        let essence = params.next().map(str::trim);
        // A `name=value` parameter, spaces around either side allowed; no allocation per request.
        let has = |name: &str, value: &str| {
            params.clone().any(|p| {
                p.split_once('=')
                    .is_some_and(|(n, v)| n.trim() == name && v.trim() == value)
            })
        };
        let ejson = if has("mode", "relaxed") {
            OutputMode::Relaxed
        } else {
            OutputMode::Ejson
        };
        match essence {
            Some("application/ejson") => {
                format.mode = ejson;
                return format;
            }
            Some("application/x-ndjson") => {
                format.framing = Framing::Lines;
                if has("format", "ejson") {
                    format.mode = ejson;
                }
                return format;
            }
            _ => {}
        }
    }
    format
}

/// The invocation a request says it belongs to: the runtime's X-Ray trace header, which the thin
/// clients pass on (see [`crate::invocation`]).
pub fn trace_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok())
}

/// Reads the body within `limit` bytes and `timeout`.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<bytes::Bytes, ApiError> {
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
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_output_mode() {
        let mut headers = HeaderMap::new();
        assert_eq!(response_format(&headers).mode, OutputMode::Json);
        headers.insert(header::ACCEPT, "application/ejson".parse().expect("header"));
        assert_eq!(response_format(&headers).mode, OutputMode::Ejson);
        headers.insert(
            header::ACCEPT,
            "application/x-ndjson; format=ejson"
                .parse()
                .expect("header"),
        );
        let format = response_format(&headers);
        assert_eq!(
            (format.framing, format.mode),
            (Framing::Lines, OutputMode::Ejson)
        );
        headers.insert(
            header::ACCEPT,
            "application/ejson; mode=relaxed".parse().expect("header"),
        );
        assert_eq!(response_format(&headers).mode, OutputMode::Relaxed);
        headers.insert(
            header::ACCEPT,
            "application/x-ndjson; format=ejson; mode=relaxed"
                .parse()
                .expect("header"),
        );
        let format = response_format(&headers);
        assert_eq!(
            (format.framing, format.mode),
            (Framing::Lines, OutputMode::Relaxed)
        );
        // Relaxed is a kind of EJSON: alone on NDJSON it leaves the lines plain JSON.
        headers.insert(
            header::ACCEPT,
            "application/x-ndjson; mode=relaxed"
                .parse()
                .expect("header"),
        );
        assert_eq!(response_format(&headers).mode, OutputMode::Json);
    }

    #[test]
    fn content_type_must_be_json_or_ejson() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("header"),
        );
        assert!(check_content_type(&headers).is_ok());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
        assert_eq!(
            check_content_type(&headers)
                .err()
                .map(|e| e.status.as_u16()),
            Some(415)
        );
    }
}

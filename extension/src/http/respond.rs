//! Writing answers: from raw BSON straight to response bytes, and cursors streamed in chunks so
//! the sidecar's memory stays flat whatever the result size.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use mongodb::Cursor;
use mongodb::bson::{Document, RawDocument, RawDocumentBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::error::ApiError;
use super::request::{Framing, ResponseFormat};
use crate::config::MAX_DOCUMENTS;
use crate::ejson::{self, MalformedBson};
use crate::mongo::DataSource;

/// A streamed response is sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

pub fn bytes_response(format: ResponseFormat, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn malformed(_: MalformedBson) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "DatabaseError",
        "the database sent a document the sidecar could not read",
    )
}

/// A response document such as `{"insertedId": ...}`: always one object, even when the client
/// asked for NDJSON, which only cursors (find, aggregate) produce.
pub fn document(format: ResponseFormat, doc: &Document) -> Result<Response, ApiError> {
    let format = format.single_object();
    let raw = RawDocumentBuf::from_document(doc).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "DatabaseError",
            "the result could not be encoded",
        )
    })?;
    let mut out = Vec::with_capacity(raw.as_bytes().len() * 2);
    ejson::write_document(&mut out, &raw, format.mode).map_err(malformed)?;
    Ok(bytes_response(format, out))
}

/// `{"document": {...}}` or `{"document": null}`.
pub fn found(format: ResponseFormat, found: Option<&RawDocument>) -> Result<Response, ApiError> {
    let format = format.single_object();
    let mut out = Vec::with_capacity(found.map_or(16, |d| d.as_bytes().len() * 2 + 16));
    out.extend_from_slice(b"{\"document\":");
    match found {
        Some(doc) => ejson::write_document(&mut out, doc, format.mode).map_err(malformed)?,
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(bytes_response(format, out))
}

/// The state of a streamed cursor response.
struct CursorStream {
    cursor: Cursor<RawDocumentBuf>,
    format: ResponseFormat,
    deadline: Instant,
    written: u64,
    /// Held until the last chunk is sent, so the concurrency limit counts streams too.
    _permit: Option<OwnedSemaphorePermit>,
}

impl CursorStream {
    /// Appends documents to `out` until it holds a chunk's worth or the cursor ends.
    /// Returns whether the cursor has more.
    async fn fill(&mut self, out: &mut Vec<u8>, max_documents: u64) -> Result<bool, CursorError> {
        while out.len() < CHUNK_BYTES {
            let more = tokio::time::timeout_at(self.deadline, self.cursor.advance())
                .await
                .map_err(|_| CursorError::Timeout)?
                .map_err(CursorError::Mongo)?;
            if !more {
                return Ok(false);
            }
            if max_documents > 0 && self.written >= max_documents {
                return Err(CursorError::TooMany(max_documents));
            }
            if self.written > 0 && self.format.framing == Framing::Object {
                out.push(b',');
            }
            ejson::write_document(out, self.cursor.current(), self.format.mode)
                .map_err(|_| CursorError::Malformed)?;
            if self.format.framing == Framing::Lines {
                out.push(b'\n');
            }
            self.written += 1;
        }
        Ok(true)
    }
}

/// Why a cursor stopped early.
#[derive(Debug)]
pub enum CursorError {
    Mongo(mongodb::error::Error),
    Timeout,
    TooMany(u64),
    Malformed,
}

impl std::fmt::Display for CursorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mongo(_) => f.write_str("the database failed while the result was read"),
            Self::Timeout => {
                f.write_str("the operation exceeded its time while the result was read")
            }
            Self::TooMany(n) => write!(f, "the result has more than {n} documents"),
            Self::Malformed => {
                f.write_str("the database sent a document the sidecar could not read")
            }
        }
    }
}

impl std::error::Error for CursorError {}

/// Streams a cursor as `{"documents": [...]}` (or NDJSON lines).
///
/// With a document cap (`max_documents > 0`), the sidecar reads up to the cap before it
/// answers, so exceeding it is a clean 400 rather than a cut stream. Without one, the first
/// chunk is written, and if the cursor is done the answer is a plain body; otherwise the rest
/// follows chunk by chunk, one batch in memory at a time.
pub async fn cursor(
    cursor: Cursor<RawDocumentBuf>,
    format: ResponseFormat,
    deadline: Instant,
    max_documents: u64,
    permit: Option<OwnedSemaphorePermit>,
    source: &DataSource,
) -> Result<Response, ApiError> {
    let mut stream = CursorStream {
        cursor,
        format,
        deadline,
        written: 0,
        _permit: permit,
    };
    let mut first = Vec::with_capacity(CHUNK_BYTES + 1024);
    if format.framing == Framing::Object {
        first.extend_from_slice(b"{\"documents\":[");
    }
    let more = loop {
        let has_more = match stream.fill(&mut first, max_documents).await {
            Ok(has_more) => has_more,
            Err(CursorError::TooMany(n)) => {
                return Err(ApiError::invalid(format!(
                    "the result has more than {n} documents ({MAX_DOCUMENTS}); narrow the filter or pass a smaller limit"
                )));
            }
            Err(CursorError::Timeout) => {
                return Err(ApiError::timeout("the operation exceeded its time limit"));
            }
            Err(CursorError::Malformed) => return Err(malformed(MalformedBson)),
            Err(CursorError::Mongo(e)) => return Err(ApiError::from_mongo(&e, source)),
        };
        // With a cap, keep reading until the cap is known not to be exceeded.
        if !has_more || max_documents == 0 {
            break has_more;
        }
    };
    if !more {
        if format.framing == Framing::Object {
            first.extend_from_slice(b"]}");
        }
        return Ok(bytes_response(format, first));
    }

    let chunks = futures_util::stream::unfold(
        (stream, Some(first), false),
        move |(mut stream, pending, done)| async move {
            if let Some(chunk) = pending {
                return Some((Ok(Bytes::from(chunk)), (stream, None, done)));
            }
            if done {
                return None;
            }
            let mut out = Vec::with_capacity(CHUNK_BYTES + 1024);
            match stream.fill(&mut out, max_documents).await {
                Ok(true) => Some((Ok(Bytes::from(out)), (stream, None, false))),
                Ok(false) => {
                    if stream.format.framing == Framing::Object {
                        out.extend_from_slice(b"]}");
                    }
                    Some((Ok(Bytes::from(out)), (stream, None, true)))
                }
                Err(err) => {
                    // The status line has gone out: cutting the stream short is the only way
                    // left to tell the client the result is incomplete.
                    tracing::warn!(error = %err, written = stream.written, "streamed result cut short");
                    Some((Err(err), (stream, None, true)))
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(chunks));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

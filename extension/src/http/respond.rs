//! Writing answers: from raw BSON straight to response bytes, and cursors streamed in chunks so
//! the sidecar's memory stays flat whatever the result size.
//!
//! A cursor's first chunk (up to [`CHUNK_BYTES`]) is read before the status line is sent: a result
//! that fits in it is sent whole with a `Content-Length`, and a result over the document cap found
//! there is a clean 400. A larger result is chunked, one chunk read from the cursor each time the
//! connection can take one; if the database fails, the time runs out or the cap is passed while it
//! streams, the stream ends without its terminating chunk, which every HTTP/1.1 client reports as
//! an incomplete answer. Memory held for one answer: one chunk, plus the document that crosses its
//! end, plus the driver's current batch (`batchSize` documents).

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bson::RawDocument;
use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use super::error::ApiError;
use super::request::{Framing, ResponseFormat};
use crate::config::MAX_DOCUMENTS;
use crate::ejson::{self, MalformedBson};
use crate::mongo::{DocumentStream, OpError, Outcome};

/// A streamed response is sent in chunks of about this size.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What the answer to an action carried, for the log and the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    /// Documents in the answer, as far as known before the body is sent.
    pub documents: u64,
    /// Bytes of the body, when written whole; a stream's are counted as it goes.
    pub bytes: u64,
}

/// The answer to an operation. `permit` (the concurrency slot) is held until a stream ends.
pub async fn outcome(
    outcome: Outcome,
    format: ResponseFormat,
    max_documents: u64,
    permit: OwnedSemaphorePermit,
) -> Result<(Response, Sent), ApiError> {
    match outcome {
        Outcome::Document(doc) => {
            let format = format.single_object();
            let mut out = Vec::with_capacity(doc.as_bytes().len() * 2);
            ejson::write_document(&mut out, &doc, format.mode).map_err(malformed)?;
            Ok(whole(format, out, 0))
        }
        Outcome::Found(found) => {
            let format = format.single_object();
            let mut out =
                Vec::with_capacity(found.as_ref().map_or(16, |d| d.as_bytes().len() * 2 + 16));
            out.extend_from_slice(b"{\"document\":");
            match &found {
                Some(doc) => {
                    ejson::write_document(&mut out, doc, format.mode).map_err(malformed)?
                }
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
            Ok(whole(format, out, u64::from(found.is_some())))
        }
        Outcome::Documents(stream) => documents(*stream, format, max_documents, permit).await,
    }
}

fn whole(format: ResponseFormat, body: Vec<u8>, documents: u64) -> (Response, Sent) {
    let sent = Sent {
        documents,
        bytes: body.len() as u64,
    };
    (
        with_content_type(Response::new(Body::from(body)), format),
        sent,
    )
}

fn with_content_type(mut response: Response, format: ResponseFormat) -> Response {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn malformed(_: MalformedBson) -> ApiError {
    ApiError::from(OpError::Malformed)
}

/// A cursor being written out, chunk by chunk.
struct Documents {
    stream: DocumentStream,
    format: ResponseFormat,
    /// 0: no cap.
    max_documents: u64,
    written: u64,
    /// Held until the last chunk is sent, so the concurrency limit counts streams too.
    _permit: OwnedSemaphorePermit,
}

/// Why a stream stopped before its end.
enum Stop {
    Failed(Box<OpError>),
    OverCap,
    Malformed,
}

impl Documents {
    /// Appends documents to `out` until it holds a chunk's worth or the cursor ends. Returns
    /// whether the cursor has more. The loop's work is bounded by the chunk: the caller yields
    /// between chunks.
    async fn fill(&mut self, out: &mut Vec<u8>) -> Result<bool, Stop> {
        while out.len() < CHUNK_BYTES {
            if !self
                .stream
                .advance()
                .await
                .map_err(|e| Stop::Failed(Box::new(e)))?
            {
                return Ok(false);
            }
            if self.max_documents > 0 && self.written >= self.max_documents {
                return Err(Stop::OverCap);
            }
            push(out, self.stream.current(), self.format, self.written == 0)?;
            self.written += 1;
        }
        Ok(true)
    }

    fn close(&self, out: &mut Vec<u8>) {
        if self.format.framing == Framing::Object {
            out.extend_from_slice(b"]}");
        }
    }

    fn open(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHUNK_BYTES + 1024);
        if self.format.framing == Framing::Object {
            out.extend_from_slice(b"{\"documents\":[");
        }
        out
    }
}

/// Appends one document of a list: after a comma in an object's array, or as a line of NDJSON.
fn push(
    out: &mut Vec<u8>,
    doc: &RawDocument,
    format: ResponseFormat,
    first: bool,
) -> Result<(), Stop> {
    if !first && format.framing == Framing::Object {
        out.push(b',');
    }
    ejson::write_document(out, doc, format.mode).map_err(|_| Stop::Malformed)?;
    if format.framing == Framing::Lines {
        out.push(b'\n');
    }
    Ok(())
}

/// Streams a cursor as `{"documents": [...]}` (or NDJSON lines).
async fn documents(
    stream: DocumentStream,
    format: ResponseFormat,
    max_documents: u64,
    permit: OwnedSemaphorePermit,
) -> Result<(Response, Sent), ApiError> {
    let mut docs = Documents {
        stream,
        format,
        max_documents,
        written: 0,
        _permit: permit,
    };
    let mut first = docs.open();
    let more = match docs.fill(&mut first).await {
        Ok(more) => more,
        Err(Stop::OverCap) => {
            return Err(ApiError::invalid(format!(
                "the result has more than {max_documents} documents ({MAX_DOCUMENTS}); narrow the filter or pass a smaller limit"
            )));
        }
        Err(Stop::Failed(err)) => return Err((*err).into()),
        Err(Stop::Malformed) => return Err(ApiError::from(OpError::Malformed)),
    };
    if !more {
        docs.close(&mut first);
        return Ok(whole(format, first, docs.written));
    }

    let sent = Sent {
        documents: docs.written,
        bytes: first.len() as u64,
    };
    let chunks = futures_util::stream::unfold(
        (docs, Some(first), false),
        |(mut docs, pending, done)| async move {
            if let Some(chunk) = pending {
                return Some((Ok(Bytes::from(chunk)), (docs, None, done)));
            }
            if done {
                return None;
            }
            // Let the other tasks in between chunks, whatever the cursor has buffered.
            tokio::task::consume_budget().await;
            let mut out = Vec::with_capacity(CHUNK_BYTES + 1024);
            match docs.fill(&mut out).await {
                Ok(true) => Some((Ok(Bytes::from(out)), (docs, None, false))),
                Ok(false) => {
                    docs.close(&mut out);
                    Some((Ok(Bytes::from(out)), (docs, None, true)))
                }
                Err(stop) => {
                    let why = match stop {
                        Stop::Failed(err) => ApiError::from(*err).message,
                        Stop::OverCap => format!(
                            "the result has more than {} documents ({MAX_DOCUMENTS})",
                            docs.max_documents
                        ),
                        Stop::Malformed => {
                            "the database sent a document the sidecar could not read".to_owned()
                        }
                    };
                    // The status line has gone out: cutting the stream short is the only way
                    // left to tell the client the result is incomplete.
                    tracing::warn!(target: "mongo_sidecar::http", error = %why, written = docs.written, "streamed result cut short");
                    Some((Err(std::io::Error::other(why)), (docs, None, true)))
                }
            }
        },
    );
    let response = with_content_type(Response::new(Body::from_stream(chunks)), format);
    Ok((response, sent))
}

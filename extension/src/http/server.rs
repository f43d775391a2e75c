//! Listening and serving: a loopback TCP listener and an optional Unix socket, HTTP/1.1, and what
//! keeps local clients from holding what they took:
//! - a request head that has started must arrive within the header timeout (idle keep-alive
//!   connections are not timed: a thawed client reuses them);
//! - an answer the client stops reading is abandoned after the write timeout without progress,
//!   which frees its concurrency slot;
//! - open connections are capped, and at the cap the oldest idle one is closed to make room, so
//!   connections leaked by a client (a new agent per invocation) never lock others out.
//!
//! On stop, the listeners close, idle connections close, and in-flight requests finish within the
//! drain budget.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{info, warn};

use crate::config::{Config, Limits};

/// The bound listeners. Binding happens before the extension registers, so the function's
/// own init can call the sidecar as soon as it starts.
pub struct Listeners {
    tcp: TcpListener,
    unix: Option<(UnixListener, PathBuf)>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> io::Result<Self> {
        let tcp = TcpListener::bind((config.host, config.port)).await?;
        let unix = match &config.socket {
            None => None,
            Some(path) => {
                // A stale socket file from an earlier run would make bind fail.
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                    std::fs::remove_file(path)?;
                }
                // Owner only (0600) from the moment it exists, so there is no window in which
                // another user could connect: the function runs as the extension's user. The
                // umask is process-wide, and nothing else creates files this early at start.
                // SAFETY: umask has no preconditions and cannot fail.
                let previous = unsafe { libc::umask(0o177) };
                let bound = UnixListener::bind(path);
                // SAFETY: as above.
                unsafe { libc::umask(previous) };
                Some((bound?, path.clone()))
            }
        };
        Ok(Self { tcp, unix })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves until `stop` is cancelled, then stops accepting and waits up to `drain` for
/// in-flight requests to finish.
pub async fn serve(
    listeners: Listeners,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    drain: tokio::sync::watch::Receiver<Duration>,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timeout also runs while a kept-alive connection sits idle, and would
    // close it under a client about to reuse it (after a thaw, both sides' timers fire at once).
    // `TimedIo` times only a request head that has started to arrive.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let server = Server {
        builder,
        app,
        limits,
        connections: Arc::default(),
        tasks: TaskTracker::new(),
        stop,
    };

    let Listeners { tcp, unix } = listeners;
    let (unix_listener, unix_path) = match unix {
        Some((l, p)) => (Some(l), Some(p)),
        None => (None, None),
    };
    loop {
        let accepted = tokio::select! {
            () = server.stop.cancelled() => break,
            conn = tcp.accept() => conn.map(|(stream, _)| {
                // Small request/response pairs: do not let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }),
            conn = accept_unix(unix_listener.as_ref()) => conn.map(Stream::Unix),
        };
        match accepted {
            Ok(Stream::Tcp(s)) => server.accept(s),
            Ok(Stream::Unix(s)) => server.accept(s),
            // Running out of file descriptors and the like: back off rather than spin.
            Err(err) => {
                warn!(target: "mongo_sidecar::http", error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    drop(tcp);
    drop(unix_listener);
    if let Some(path) = unix_path {
        let _ = std::fs::remove_file(path);
    }
    let budget = *drain.borrow();
    let in_flight = server.connections.busy();
    server.tasks.close();
    match tokio::time::timeout(budget, server.tasks.wait()).await {
        Ok(()) => info!(target: "mongo_sidecar::http", in_flight, "http server drained"),
        Err(_) => {
            warn!(target: "mongo_sidecar::http", in_flight, drain_ms = budget.as_millis() as u64, "http drain timed out; dropping connections")
        }
    }
    Ok(())
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept_unix(listener: Option<&UnixListener>) -> io::Result<tokio::net::UnixStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

struct Server {
    builder: hyper::server::conn::http1::Builder,
    app: Router,
    limits: Limits,
    connections: Arc<Connections>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Server {
    /// Serves one new connection, making room for it at the cap.
    fn accept<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some((id, state, close)) = self
            .connections
            .admit(self.limits.max_connections, &self.stop)
        else {
            warn!(target: "mongo_sidecar::http", max = self.limits.max_connections, "every connection is busy at MONGO_SIDECAR_MAX_CONNECTIONS; refusing a new one with 503");
            self.tasks.spawn(refuse(stream));
            return;
        };
        let io = TimedIo {
            inner: stream,
            state: Arc::clone(&state),
            head_timeout: self.limits.header_timeout,
            write_timeout: self.limits.write_timeout,
            head_timer: None,
            write_timer: None,
        };
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request| {
            // The head is in: from here the handler's own body timeout and time budget apply.
            state.set(REQUEST);
            let response = app.clone().oneshot(request.map(Body::new));
            let state = Arc::clone(&state);
            async move {
                response
                    .await
                    .map(|r| r.map(|body| Body::new(IdleWhenSent { body, state })))
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        let connections = Arc::clone(&self.connections);
        self.tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = close.cancelled() => {
                    // Drain or eviction: an idle connection closes now; a busy one after its
                    // answer.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(target: "mongo_sidecar::http", error = %err, "connection ended with an error");
            }
            connections.remove(id);
        });
    }
}

/// Answers a connection there is no room for with a 503, instead of closing it silently.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    const BODY: &str = r#"{"error":"the sidecar has MONGO_SIDECAR_MAX_CONNECTIONS connections open and all are busy; retry shortly","error_code":"Overloaded"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the answer away.
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// Where a connection is between requests.
const IDLE: u8 = 0;
/// Bytes of a request head have arrived; the head must be complete within the timeout.
const HEAD: u8 = 1;
/// The head was parsed and the request is being served.
const REQUEST: u8 = 2;

/// A connection's phase, shared by its I/O, its service and the registry.
struct ConnState {
    phase: AtomicU8,
    /// When it last became idle, in ms since the registry's epoch.
    idle_since_ms: AtomicU64,
    epoch: Instant,
}

impl ConnState {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    fn set(&self, phase: u8) {
        if phase == IDLE {
            self.idle_since_ms
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        self.phase.store(phase, Ordering::Relaxed);
    }
}

/// The open connections, to cap them and to pick the one to close at the cap.
#[derive(Default)]
struct Connections {
    open: Mutex<Vec<(u64, Arc<ConnState>, CancellationToken)>>,
    next_id: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Connections {
    /// Registers a new connection. At the cap the oldest idle connection is told to close and
    /// makes room; `None` when every one is busy.
    fn admit(
        &self,
        max: usize,
        stop: &CancellationToken,
    ) -> Option<(u64, Arc<ConnState>, CancellationToken)> {
        let Ok(mut open) = self.open.lock() else {
            return None;
        };
        if open.len() >= max {
            let oldest_idle = open
                .iter()
                .enumerate()
                .filter(|(_, (_, state, _))| state.phase() == IDLE)
                .min_by_key(|(_, (_, state, _))| state.idle_since_ms.load(Ordering::Relaxed))
                .map(|(i, _)| i)?;
            let (_, _, close) = open.swap_remove(oldest_idle);
            close.cancel();
            tracing::debug!(target: "mongo_sidecar::http", max, "connection cap reached; closed the oldest idle connection");
        }
        let epoch = *self.epoch.get_or_init(Instant::now);
        let state = Arc::new(ConnState {
            phase: AtomicU8::new(IDLE),
            idle_since_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            epoch,
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = stop.child_token();
        open.push((id, Arc::clone(&state), close.clone()));
        Some((id, state, close))
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.retain(|(other, _, _)| *other != id);
        }
    }

    fn busy(&self) -> usize {
        self.open.lock().map_or(0, |open| {
            open.iter().filter(|(_, s, _)| s.phase() != IDLE).count()
        })
    }
}

/// A connection's I/O with its two timers: a request head, once started, must arrive whole within
/// `head_timeout`; an answer must make progress within `write_timeout`. Idle time between requests
/// is not counted.
struct TimedIo<S> {
    inner: S,
    state: Arc<ConnState>,
    head_timeout: Duration,
    write_timeout: Duration,
    head_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    write_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> TimedIo<S> {
    /// On a write that cannot proceed: starts the write timer, or reports it expired.
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.write_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            tracing::debug!(target: "mongo_sidecar::http", "the client stopped reading its answer; closing the connection");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the answer",
            )));
        }
        Poll::Pending
    }

    fn wrote(
        &mut self,
        polled: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Pending => self.write_stalled(cx),
            ready => {
                self.write_timer = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let phase = self.state.phase();
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before && phase == IDLE => {
                self.state.set(HEAD);
                let timeout = self.head_timeout;
                self.head_timer = Some(Box::pin(tokio::time::sleep(timeout)));
                Poll::Ready(Ok(()))
            }
            Poll::Pending if phase == HEAD => {
                let expired = self
                    .head_timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                if expired {
                    tracing::debug!(target: "mongo_sidecar::http", "request head not received in time; closing the connection");
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
            other => {
                if phase != HEAD {
                    self.head_timer = None;
                }
                other
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that marks its connection idle once it has been sent (or dropped).
struct IdleWhenSent {
    body: Body,
    state: Arc<ConnState>,
}

impl http_body::Body for IdleWhenSent {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for IdleWhenSent {
    fn drop(&mut self) {
        self.state.set(IDLE);
    }
}

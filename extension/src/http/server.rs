//! Listening and serving: a loopback TCP listener and an optional Unix socket, HTTP/1.1 with a
//! header read timeout, and a graceful drain that lets in-flight requests finish.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
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
                let listener = bound?;
                Some((listener, path.clone()))
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
    let header_timeout = limits.header_timeout;
    // Idle keep-alive connections are not timed (see HeadTimeout), so their number is capped:
    // a local client cannot pile up connections without bound.
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timeout also runs while a kept-alive connection sits idle, and would
    // close it under a client about to reuse it (after a thaw, both sides' timers fire at once).
    // HeadTimeout times only a request head that has started to arrive.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);

    let Listeners { tcp, unix } = listeners;
    let (unix_listener, unix_path) = match unix {
        Some((l, p)) => (Some(l), Some(p)),
        None => (None, None),
    };

    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            conn = tcp.accept() => conn.map(|(stream, _)| {
                // Small request/response pairs: do not let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                Connection::Tcp(stream)
            }),
            conn = accept_unix(unix_listener.as_ref()) => conn.map(Connection::Unix),
        };
        match accepted {
            Ok(conn) => {
                let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                    warn!(
                        max = limits.max_connections,
                        "connection limit reached; closing a new connection"
                    );
                    continue;
                };
                match conn {
                    Connection::Tcp(s) => {
                        spawn_connection(&builder, &graceful, s, &app, header_timeout, permit)
                    }
                    Connection::Unix(s) => {
                        spawn_connection(&builder, &graceful, s, &app, header_timeout, permit)
                    }
                }
            }
            // Running out of file descriptors and the like: back off rather than spin.
            Err(err) => {
                warn!(error = %err, "accept failed");
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
    let in_flight = graceful.count();
    match tokio::time::timeout(budget, graceful.shutdown()).await {
        Ok(()) => info!(in_flight, "http server drained"),
        Err(_) => warn!(
            in_flight,
            drain_ms = budget.as_millis() as u64,
            "http drain timed out; dropping connections"
        ),
    }
    Ok(())
}

enum Connection {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept_unix(listener: Option<&UnixListener>) -> io::Result<tokio::net::UnixStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

fn spawn_connection<S>(
    builder: &hyper::server::conn::http1::Builder,
    graceful: &GracefulShutdown,
    stream: S,
    app: &Router,
    header_timeout: Duration,
    permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let phase = Arc::new(AtomicU8::new(IDLE));
    let io = HeadTimeout {
        inner: stream,
        phase: Arc::clone(&phase),
        timeout: header_timeout,
        timer: None,
    };
    let app = app.clone();
    let service = hyper::service::service_fn(move |request| {
        // The head is in: from here the handler's own body timeout and time budget apply.
        phase.store(REQUEST, Ordering::Relaxed);
        let response = app.clone().oneshot(request.map(Body::new));
        let phase = Arc::clone(&phase);
        async move {
            response
                .await
                .map(|r| r.map(|body| Body::new(IdleWhenSent { body, phase })))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(err) = conn.await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
        drop(permit);
    });
}

/// Where a connection is between requests, shared by its I/O and its service.
const IDLE: u8 = 0;
/// Bytes of a request head have arrived; the head must be complete within the timeout.
const HEAD: u8 = 1;
/// The head was parsed and the request is being served.
const REQUEST: u8 = 2;

/// A connection's I/O that ends the connection when a request head, once started, does not
/// arrive whole within `timeout`. Idle time between requests is not counted.
struct HeadTimeout<S> {
    inner: S,
    phase: Arc<AtomicU8>,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let phase = self.phase.load(Ordering::Relaxed);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before && phase == IDLE => {
                self.phase.store(HEAD, Ordering::Relaxed);
                let timeout = self.timeout;
                self.timer = Some(Box::pin(tokio::time::sleep(timeout)));
                Poll::Ready(Ok(()))
            }
            Poll::Pending if phase == HEAD => {
                let expired = self
                    .timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                if expired {
                    tracing::debug!("request head not received in time; closing the connection");
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
                    self.timer = None;
                }
                other
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that marks its connection idle once it has been sent (or dropped).
struct IdleWhenSent {
    body: Body,
    phase: Arc<AtomicU8>,
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
        self.phase.store(IDLE, Ordering::Relaxed);
    }
}

//! Listening and serving: a loopback TCP listener and an optional Unix socket, HTTP/1.1 with a
//! header read timeout, and a graceful drain that lets in-flight requests finish.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;

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
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket_like()) {
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                // Owner only: the function runs as the same user as the extension.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Some((listener, path.clone()))
            }
        };
        Ok(Self { tcp, unix })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_socket()
    }
}

/// Serves until `stop` is cancelled, then stops accepting and waits up to `drain` for
/// in-flight requests to finish.
pub async fn serve(
    listeners: Listeners,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    drain: tokio::sync::watch::Receiver<Duration>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);

    let Listeners { tcp, unix } = listeners;
    let unix_path = unix.as_ref().map(|(_, p)| p.clone());
    let (unix_listener, _) = match unix {
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
                let service = TowerToHyperService::new(app.clone());
                match conn {
                    Connection::Tcp(s) => spawn_connection(&builder, &graceful, s, service),
                    Connection::Unix(s) => spawn_connection(&builder, &graceful, s, service),
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
    service: TowerToHyperService<Router>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(err) = conn.await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
}

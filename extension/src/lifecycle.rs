//! The process's life: as a Lambda extension (register, INVOKE, SHUTDOWN, init errors) or
//! standalone (SIGTERM/SIGINT), with the same start-up and the same drain.
//!
//! Start-up order inside Lambda, and why:
//! 1. Read and validate the configuration.
//! 2. Bind the listener *before* `/register`: the runtime's init starts as soon as register
//!    returns, and a handler may call the sidecar from its own init.
//! 3. Register for INVOKE and SHUTDOWN. A configuration error is reported now, through
//!    `/extension/init/error`, so the function fails loudly at init.
//! 4. Read secrets and start the clients, which connect in the background while Lambda runs the
//!    function's init; wait for the first connection at most `MONGO_SIDECAR_READY_TIMEOUT_MS`.
//!    A secret that cannot be read is an init error; an unreachable database (or a
//!    `mongodb+srv://` name DNS cannot resolve yet) is not: requests get a 503 with the cause
//!    until the keeper connects.
//! 5. Make the first `/next`. Each INVOKE is recorded in the [`Invocation`], which gives requests
//!    their deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_extension::{Extension, LambdaEvent, NextEvent, service_fn};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{AWS_LAMBDA_RUNTIME_API, Auth, Config, ConfigError};
use crate::http::{AppState, Listeners, router, serve};
use crate::invocation::Invocation;
use crate::metrics::{EmfSettings, Metrics};
use crate::mongo::DataSources;
use crate::secrets;

/// The SHUTDOWN phase lasts 2,000 ms; keep this much of it for closing clients and exiting.
const SHUTDOWN_RESERVE: Duration = Duration::from_millis(300);
/// Standalone mode has no deadline from Lambda; drain for at most this long.
const STANDALONE_DRAIN: Duration = Duration::from_secs(2);
/// The most closing the clients may take.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// The exit code: 0 after a clean drain, 1 when start-up failed.
pub async fn run(config: Result<Config, ConfigError>) -> i32 {
    if std::env::var_os(AWS_LAMBDA_RUNTIME_API).is_some() {
        run_extension(config).await
    } else {
        run_standalone(config).await
    }
}

/// In standalone mode (no INVOKE events to mark windows), the EMF metrics are written this often.
const STANDALONE_METRICS_WINDOW: Duration = Duration::from_secs(60);

/// The data sources and the metrics: made once the configuration is known, before the first
/// event, since every INVOKE ends a metrics window.
#[derive(Clone)]
struct Parts {
    sources: Arc<DataSources>,
    metrics: Arc<Metrics>,
}

impl Parts {
    fn new(config: &Config) -> Self {
        let emf = config
            .metrics
            .emf_namespace
            .clone()
            .map(|namespace| EmfSettings {
                namespace,
                function_name: config.app_name.clone(),
            });
        Self {
            sources: Arc::new(DataSources::new(config)),
            metrics: Arc::new(Metrics::new(emf)),
        }
    }

    /// Ends the metrics window: its EMF records go to stdout.
    fn flush_metrics(&self) {
        self.metrics.flush(&self.sources);
    }
}

/// What is running once start-up succeeded.
struct Sidecar {
    config: Arc<Config>,
    parts: Parts,
    server: JoinHandle<std::io::Result<()>>,
    /// Cancelled when the server task ends, for whatever reason.
    server_stopped: CancellationToken,
    stop: CancellationToken,
    drain: watch::Sender<Duration>,
}

impl Sidecar {
    /// Starts serving on the bound listeners. The data sources exist, warming, from here on:
    /// a request that arrives before they connect waits for them.
    fn serve(
        config: Arc<Config>,
        parts: Parts,
        listeners: Listeners,
        invocation: Arc<Invocation>,
    ) -> Self {
        let state = Arc::new(AppState::new(
            Arc::clone(&config),
            Arc::clone(&parts.sources),
            invocation,
            Arc::clone(&parts.metrics),
        ));
        let stop = CancellationToken::new();
        let (drain, drain_rx) = watch::channel(STANDALONE_DRAIN);
        let server_stopped = CancellationToken::new();
        let serving = serve(
            listeners,
            router(state),
            config.limits.clone(),
            stop.clone(),
            drain_rx,
        );
        let stopped = server_stopped.clone();
        let server = tokio::spawn(async move {
            let _stopped = stopped.drop_guard();
            serving.await
        });
        Self {
            config,
            parts,
            server,
            server_stopped,
            stop,
            drain,
        }
    }

    /// Reads each data source's connection string and starts its client. Only a secret that
    /// cannot be read fails: connecting happens in the background.
    async fn connect(&self) -> Result<(), String> {
        let mut uris = Vec::new();
        for source_config in self.config.sources() {
            uris.push(
                secrets::resolve(&source_config.uri)
                    .await
                    .map_err(|e| e.0)?,
            );
        }
        self.parts.sources.start(uris, &self.config.app_name);
        Ok(())
    }

    /// Waits, at most the ready timeout, for the first connection of every data source.
    async fn wait_ready(&self) {
        let started = Instant::now();
        for source in self.parts.sources.all() {
            let left = self.config.ready_timeout.saturating_sub(started.elapsed());
            if let Err(err) = source.wait_ready(left).await {
                let why = match err {
                    crate::mongo::OpError::Unavailable { cause } => cause,
                    _ => "still connecting".to_owned(),
                };
                warn!(target: "mongo_sidecar::lifecycle", data_source = %source.name, error = %why, "not connected yet; requests will wait or get 503 until it is");
            }
        }
    }

    /// Stops accepting, lets in-flight requests finish within `budget`, closes the clients.
    async fn drain(self, budget: Duration) {
        let started = Instant::now();
        self.drain.send_replace(budget);
        self.stop.cancel();
        match tokio::time::timeout(budget + Duration::from_millis(50), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => warn!(error = %err, "http server ended with an error"),
            Ok(Err(err)) => warn!(error = %err, "http server task failed"),
            Err(_) => warn!("http server did not stop in time"),
        }
        // The last metrics window ends with the last request.
        self.parts.flush_metrics();
        if tokio::time::timeout(CLOSE_TIMEOUT, self.parts.sources.close_all())
            .await
            .is_err()
        {
            warn!("closing the database clients timed out");
        }
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drained; exiting"
        );
    }
}

async fn run_standalone(config: Result<Config, ConfigError>) -> i32 {
    let config = match config {
        Ok(config) => Arc::new(config),
        Err(err) => {
            error!(error = %err, "invalid configuration");
            return 1;
        }
    };
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(err) => {
            error!(host = %config.host, port = config.port, error = %err, "cannot listen");
            return 1;
        }
    };
    announce(&config, &listeners, "standalone");
    let parts = Parts::new(&config);
    let sidecar = Sidecar::serve(
        Arc::clone(&config),
        parts.clone(),
        listeners,
        Arc::default(),
    );
    if let Err(err) = sidecar.connect().await {
        error!(error = %err, "cannot start the database clients");
        return 1;
    }
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers");
        return 1;
    };
    let mut window = tokio::time::interval(STANDALONE_METRICS_WINDOW);
    window.reset();
    loop {
        tokio::select! {
            _ = term.recv() => { info!(target: "mongo_sidecar::lifecycle", "SIGTERM: draining"); break; }
            _ = int.recv() => { info!(target: "mongo_sidecar::lifecycle", "SIGINT: draining"); break; }
            _ = window.tick(), if parts.metrics.emf_enabled() => parts.flush_metrics(),
            () = sidecar.server_stopped.cancelled() => {
                error!(target: "mongo_sidecar::lifecycle", "http server stopped; nothing left to serve");
                return 1;
            }
        }
    }
    sidecar.drain(STANDALONE_DRAIN).await;
    0
}

async fn run_extension(config: Result<Config, ConfigError>) -> i32 {
    let started = Instant::now();
    // 1 and 2: configuration, then the listener, before registering.
    let prepared = match config {
        Ok(config) => match Listeners::bind(&config).await {
            Ok(listeners) => {
                let parts = Parts::new(&config);
                Ok((Arc::new(config), listeners, parts))
            }
            Err(err) => Err((
                "Extension.ListenFailed",
                format!("cannot listen on {}:{}: {err}", config.host, config.port),
            )),
        },
        Err(err) => Err((err.error_type(), err.to_string())),
    };

    // 3: register. The events processor records what Lambda says; each INVOKE also ends the
    // previous invocation's metrics window.
    let invocation = Arc::new(Invocation::lambda());
    let (shutdown_tx, mut shutdown_rx) = watch::channel(None::<u64>);
    let recorder = Arc::clone(&invocation);
    let windows = prepared.as_ref().ok().map(|(_, _, parts)| parts.clone());
    let processor = service_fn(move |event: LambdaEvent| {
        let recorder = Arc::clone(&recorder);
        let windows = windows.clone();
        let shutdown_tx = shutdown_tx.clone();
        async move {
            match event.next {
                NextEvent::Invoke(invoke) => {
                    if let Some(parts) = &windows {
                        parts.flush_metrics();
                    }
                    let trace = Some(invoke.tracing.value.as_str()).filter(|t| !t.is_empty());
                    recorder.start(invoke.deadline_ms, trace);
                }
                NextEvent::Shutdown(shutdown) => {
                    info!(reason = %shutdown.shutdown_reason, "SHUTDOWN");
                    shutdown_tx.send_replace(Some(shutdown.deadline_ms));
                }
            }
            Ok::<(), lambda_extension::Error>(())
        }
    });
    let name = extension_name();
    let registered = Extension::new()
        .with_extension_name(&name)
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(processor)
        .register()
        .await;
    let registered = match registered {
        Ok(r) => r,
        Err(err) => {
            error!(error = %err, "cannot register with the Extensions API");
            return 1;
        }
    };

    let (config, listeners, parts) = match prepared {
        Ok(prepared) => prepared,
        Err((error_type, message)) => {
            error!(error_type, error = %message, "init failed");
            report_init_error(&registered.extension_id, error_type, &message).await;
            return 1;
        }
    };
    announce(&config, &listeners, "extension");

    // 4: connect in the background while the function initialises.
    let sidecar = Sidecar::serve(Arc::clone(&config), parts, listeners, invocation);
    if let Err(message) = sidecar.connect().await {
        let error_type = "Extension.DataSourceInvalid";
        error!(error_type, error = %message, "init failed");
        report_init_error(&registered.extension_id, error_type, &message).await;
        return 1;
    }
    sidecar.wait_ready().await;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "init done"
    );

    // 5: the event loop. Its run() keeps polling after SHUTDOWN, so this task exits the
    // process itself once drained.
    let mut events = tokio::spawn(registered.run());
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        error!("cannot install the SIGTERM handler");
        return 1;
    };
    let mut server_alive = true;
    let deadline_ms = loop {
        tokio::select! {
            changed = shutdown_rx.changed() => {
                if changed.is_err() { break None; }
                if let Some(deadline) = *shutdown_rx.borrow() { break Some(deadline); }
            }
            result = &mut events => {
                error!(result = ?result.map(|r| r.map_err(|e| e.to_string())), "the Extensions API event loop ended");
                break None;
            }
            () = sidecar.server_stopped.cancelled(), if server_alive => {
                // Fail open: the function must keep working even if the sidecar cannot.
                server_alive = false;
                error!("the http server stopped; still answering Lambda events (fail open) so the function keeps running");
            }
            _ = term.recv() => { info!("SIGTERM: draining"); break None; }
        }
    };
    let budget = deadline_ms
        .map(|deadline| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            Duration::from_millis(deadline.saturating_sub(now)).saturating_sub(SHUTDOWN_RESERVE)
        })
        .unwrap_or(STANDALONE_DRAIN);
    sidecar.drain(budget).await;
    0
}

/// The name to register under: it must equal the file name in /opt/extensions.
fn extension_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "mongo-sidecar".to_owned())
}

async fn report_init_error(extension_id: &str, error_type: &str, message: &str) {
    let request = lambda_extension::requests::init_error(
        extension_id,
        error_type,
        Some(lambda_extension::requests::ErrorRequest {
            error_message: message,
            error_type,
            stack_trace: Vec::new(),
        }),
    );
    let sent = match (
        request,
        lambda_runtime_api_client::Client::builder().build(),
    ) {
        (Ok(request), Ok(client)) => client
            .call(request)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    if let Err(err) = sent {
        error!(error = %err, "cannot report the init error to the Extensions API");
    }
}

fn announce(config: &Config, listeners: &Listeners, mode: &str) {
    let addr = listeners
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let auth = match &config.auth {
        Auth::Token(_) => "token",
        Auth::Disabled { explicit: true } => "none (MONGO_SIDECAR_AUTH=none)",
        Auth::Disabled { explicit: false } => {
            "none (standalone without MONGO_SIDECAR_TOKEN: loopback only)"
        }
    };
    info!(mode, listen = %addr, socket = ?config.socket, auth, data_sources = config.sources().count(), "listening");
    if matches!(config.auth, Auth::Disabled { explicit: false }) {
        warn!(
            "no token is required: any local process can use the database through this port; set MONGO_SIDECAR_TOKEN to require one"
        );
    }
}

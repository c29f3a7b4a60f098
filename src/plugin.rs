//! The plugin process (protocol.md §1): logging, handshake checks, bind, handshake line,
//! serve, signals, shutdown.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::watch;

use crate::handshake::{check_protocol_versions, Listener};

/// How long after a shutdown request the process exits at the latest, even if requests are
/// still in flight (Grafana kills after 2 s, protocol.md §1.5).
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(700);

/// Runs the plugin process until Grafana stops it. Writes only the handshake line to stdout.
pub fn main() -> ExitCode {
    // Before any thread exists, so that every malloc arena starts with these thresholds.
    let heap = crate::heap::tune();
    crate::logging::init("info");
    crate::logging::install_panic_hook();
    tracing::debug!(?heap, "malloc thresholds");
    let versions = std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok();
    if let Err(e) = check_protocol_versions(versions.as_deref()) {
        tracing::error!(error = %e, "Incompatible plugin host.");
        return ExitCode::FAILURE;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(io_worker_threads());
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => {
            runtime.shutdown_timeout(Duration::from_millis(100));
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "Plugin stopped with an error.");
            ExitCode::FAILURE
        }
    }
}

/// Async worker threads when `TOKIO_WORKER_THREADS` is not set: half the CPUs, at least
/// one. The workers do I/O, rendering and cache hits, which are short; conversions and Arrow
/// encoding of large answers leave them (`pipeline::cpu_heavy`). Fewer workers spend less
/// CPU per QueryData on handing tasks between threads (measured in
/// docs/benchmarks-load.md: 1 worker vs 2 on 2 CPUs).
pub fn io_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

async fn run() -> Result<(), String> {
    crate::fetch::init_tls();
    let on = crate::handshake::ListenOn::from_env();
    let chosen_by_host = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").is_some_and(|d| !d.is_empty());
    let listener = match Listener::bind(on.clone()).await {
        Ok(l) => l,
        // Our own default (a socket in the temp directory) can fail, e.g. when TMPDIR is too
        // long for a socket path (108 bytes on Linux): loopback TCP serves Grafana as well.
        Err(e) if on != crate::handshake::ListenOn::Tcp && !chosen_by_host => {
            tracing::warn!(error = %e, "Cannot listen on a unix socket in the temp directory; using loopback TCP.");
            Listener::bind(crate::handshake::ListenOn::Tcp)
                .await
                .map_err(|e| format!("cannot bind the gRPC listener: {e}"))?
        }
        Err(e) => return Err(format!("cannot bind the gRPC listener: {e}")),
    };
    let line = listener
        .handshake_line()
        .map_err(|e| format!("cannot read the listener address: {e}"))?;
    let (tx, rx) = watch::channel(false);
    watch_signals(tx.clone())?;
    {
        // protocol.md §1.3: the very first stdout bytes, after the bind, flushed.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").map_err(|e| format!("cannot write the handshake: {e}"))?;
        out.flush()
            .map_err(|e| format!("cannot flush the handshake: {e}"))?;
    }
    tracing::info!(address = %line, version = env!("CARGO_PKG_VERSION"), "RestBridge plugin started.");
    let mut exit_rx = rx.clone();
    tokio::spawn(async move {
        if exit_rx.wait_for(|v| *v).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("Requests still running at shutdown; exiting now.");
            crate::handshake::remove_socket_file();
            std::process::exit(0);
        }
    });
    crate::server::serve(listener, crate::server::Plugin::new(tx), rx)
        .await
        .map_err(|e| format!("gRPC server: {e}"))?;
    tracing::info!("RestBridge plugin stopped.");
    Ok(())
}

/// SIGINT is ignored (go-plugin's contract, protocol.md §1.8); SIGTERM shuts down.
#[cfg(unix)]
fn watch_signals(tx: watch::Sender<bool>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => tracing::debug!("SIGINT ignored (the plugin host stops plugins)."),
                _ = term.recv() => {
                    tracing::info!("SIGTERM received; shutting down.");
                    let _ = tx.send(true);
                    break;
                }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn watch_signals(_tx: watch::Sender<bool>) -> Result<(), String> {
    Ok(())
}

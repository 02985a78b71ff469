//! Building and running the service: stores, job manager, router, listener, retention task, graceful
//! shutdown.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{LogFormat, ServeConfig};
use crate::http::{AppState, router};
use crate::jobs::JobManager;
use crate::jobs::stores::{DatasetStore, TraceStore};

/// A built application: bound listener and state, ready to run.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Opens the data directory, restores jobs and binds the listener (port 0 picks a free port).
    pub async fn build(cfg: ServeConfig) -> anyhow::Result<Self> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        std::fs::create_dir_all(&cfg.data_dir)?;
        let data_dir = cfg.data_dir.clone();
        let c = cfg.clone();
        let jobs = tokio::task::spawn_blocking(move || -> anyhow::Result<JobManager> {
            let _ = std::fs::remove_dir_all(data_dir.join("tmp"));
            let datasets = DatasetStore::open(&data_dir)?;
            let traces = TraceStore::open(&data_dir)?;
            Ok(JobManager::open(c, datasets, traces)?)
        })
        .await??;
        let listener = TcpListener::bind(cfg.bind).await?;
        Ok(Self {
            listener,
            state: AppState { cfg, jobs },
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The state (tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then readiness turns false, new jobs are refused, running jobs get
    /// the grace period and are then cancelled (marked `interrupted`).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { listener, state } = self;
        tracing::info!(addr = %listener.local_addr()?, "listening; {}", state.cfg.redacted());
        let jobs = state.jobs.clone();
        let reaper_jobs = jobs.clone();
        let reaper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let j = reaper_jobs.clone();
                let n =
                    tokio::task::spawn_blocking(move || j.reap(time::OffsetDateTime::now_utc()))
                        .await
                        .unwrap_or(0);
                if n > 0 {
                    tracing::info!(removed = n, "retention removed finished jobs");
                }
            }
        });
        let grace = state.cfg.shutdown_grace();
        // 0 = serving, 1 = shutdown requested (jobs draining), 2 = jobs drained.
        let (phase_tx, phase_rx) = tokio::sync::watch::channel(0u8);
        let app = router(state);
        // The drainer owns the job shutdown, so it completes even when connections are cut below.
        let drainer = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: refusing new jobs, draining");
            let _ = phase_tx.send(1);
            jobs.shutdown(grace).await;
            let _ = phase_tx.send(2);
        });
        let reached = |mut rx: tokio::sync::watch::Receiver<u8>, phase: u8| async move {
            if rx.wait_for(|p| *p >= phase).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(reached(phase_rx.clone(), 2))
            .into_future();
        // Connections still open (a slow download, an idle SSE client) get the same grace period as jobs;
        // after it they are closed, so the process always exits.
        let hard_stop = {
            let rx = phase_rx.clone();
            async move {
                reached(rx.clone(), 1).await;
                tokio::time::sleep(grace).await;
                reached(rx, 2).await;
            }
        };
        tokio::select! {
            r = serve => r?,
            () = hard_stop => tracing::warn!("grace period over: closing the connections still open"),
        }
        let _ = drainer.await;
        reaper.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Installs the global tracing subscriber (RUST_LOG filter, default `info`).
pub fn init_telemetry(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

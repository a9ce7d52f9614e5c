//! `Application::build` binds and wires; `run_until_stopped` serves until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::client_limits::ClientLimits;
use crate::clients::Clients;
use crate::driver::{Driver, new_owner_id};
use crate::registry::Registry;
use crate::routes;
use crate::settings::{Settings, SettingsError};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("ledger: {0}")]
    Ledger(#[from] cancelgate_ledger::LedgerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(
        "the SQLite ledger {path} is in use by another cancelgate process (one process owns a SQLite ledger; use PostgreSQL for several replicas)"
    )]
    LedgerInUse { path: String },
    #[error("cannot lock the SQLite ledger {path}: {source}")]
    LedgerLock { path: String, source: std::io::Error },
    #[error("webhooks: {0}")]
    Webhooks(String),
}

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    /// Held while serving: the exclusive lock of a SQLite ledger (see [`own_sqlite_ledger`]).
    sqlite_owner: Option<std::fs::File>,
    /// Sends the outcome events (SPEC §8); `None` without an endpoint.
    dispatcher: Option<crate::webhooks::dispatcher::Dispatcher>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let registry = Registry::build(&settings)?;
        let clients = Clients::from_settings(&settings);
        if clients.accepts_demo_key() {
            tracing::warn!(
                "the published demo client key (see README) is accepted: never run this configuration in production"
            );
        }
        let sqlite_owner = {
            use secrecy::ExposeSecret;
            own_sqlite_ledger(settings.ledger.url.expose_secret())?
        };
        let webhooks = Arc::new(crate::webhooks::Webhooks::from_settings(&settings.webhooks)?);
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut ledger = connect_ledger(&settings).await?;
        if !webhooks.endpoints.is_empty() {
            // Events are written in the ledger's own transactions (SPEC §8): the rule rides on it.
            let rule = crate::webhooks::rule::Rule::new(webhooks.clone(), wake.clone());
            ledger = ledger.with_events(Arc::new(rule));
        }
        let driver = Driver { ledger, owner: new_owner_id() };
        if settings.ledger.migrate_on_start {
            driver.ledger.migrate().await?;
        }
        let dispatcher = if webhooks.endpoints.is_empty() {
            None
        } else {
            let configured = webhooks.endpoints.iter().map(|e| (e.name.clone(), e.enabled)).collect();
            driver.ledger.sync_endpoints(configured, time::OffsetDateTime::now_utc()).await?;
            for e in &webhooks.endpoints {
                tracing::info!(endpoint = %e.name, url = %e.shown, enabled = e.enabled, "webhook endpoint");
            }
            let owner = driver.owner.to_string();
            let dispatcher =
                crate::webhooks::dispatcher::Dispatcher::new(driver.ledger.clone(), owner, webhooks.clone(), wake)
                    .map_err(|e| StartError::Webhooks(e.to_string()))?;
            Some(dispatcher)
        };
        crate::webhooks::metrics::register(&webhooks);
        let listener = crate::conn_limits::listen(settings.listen)
            .map_err(|source| StartError::Bind { addr: settings.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: settings.listen, source })?;
        let providers: Vec<&'static str> = registry.entries().map(|e| e.id()).collect();
        crate::telemetry::register(&providers);
        let client_limits = Arc::new(ClientLimits::new(&clients));
        let state = AppState::new(crate::state::AppParts {
            settings: Arc::new(settings),
            registry: Arc::new(registry),
            clients: Arc::new(clients),
            client_limits,
            driver,
            draining: crate::conn_limits::Draining::default(),
            migrated: Arc::default(),
            webhooks,
        });
        Ok(Self { listener, addr, state, sqlite_owner, dispatcher })
    }

    /// The bound address (port 0 in the settings gives a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let _sqlite_owner = self.sqlite_owner;
        tracing::info!(addr = %self.addr, "cancelgate listening");
        // Replicas look for expired leases at least every 2 s (SPEC §5).
        self.state.driver.spawn_background(self.state.registry.clone(), std::time::Duration::from_secs(1));
        crate::telemetry::spawn_upkeep();
        crate::retention::spawn(self.state.driver.ledger.clone(), self.state.settings.ledger.retain_days);
        let limits = crate::conn_limits::ConnLimits::from_settings(&self.state.settings.limits);
        let drain = crate::conn_limits::Drain {
            draining: self.state.draining.clone(),
            period: std::time::Duration::from_millis(self.state.settings.limits.drain_ms),
        };
        // The dispatcher stops claiming at the signal and lets its deliveries finish within the grace.
        let grace = std::time::Duration::from_millis(self.state.settings.limits.shutdown_grace_ms);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let dispatching = self.dispatcher.map(|d| d.spawn(stopped, grace));
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let app = routes::router(self.state);
        // hyper with a timer (header read timeout, head size limits); on the signal `/readyz`
        // turns 503 and requests are still served for `limits.drain_ms`, then it stops accepting
        // and lets requests in flight finish, but never past `limits.shutdown_grace_ms`. Work left
        // in the background stays `processing` in the ledger and resumes at the next start.
        let served = crate::conn_limits::serve_draining(self.listener, app, limits, drain, shutdown).await;
        if let Some(dispatching) = dispatching {
            let _ = tokio::time::timeout(grace, dispatching).await;
        }
        served.map_err(StartError::Serve)
    }
}

/// A SQLite ledger has one owner process: at start it resumes EVERY `processing` record at once
/// (SPEC §5), which is right only if no other process is driving them. An exclusive lock on
/// `<file>.lock`, held while serving, turns a second `serve` on the same file into a clear error
/// instead of two drivers. The OS drops the lock when the process dies (kill -9 included).
fn own_sqlite_ledger(url: &str) -> Result<Option<std::fs::File>, StartError> {
    let Some(rest) = url.strip_prefix("sqlite:") else { return Ok(None) };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(None);
    }
    let lock_path = format!("{path}.lock");
    let io = |source| StartError::LedgerLock { path: path.to_owned(), source };
    if let Some(dir) = std::path::Path::new(&lock_path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::LedgerInUse { path: path.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Open the ledger named by `ledger.url` (a SQLite file's directory is created).
pub async fn connect_ledger(settings: &Settings) -> Result<cancelgate_ledger::Ledger, StartError> {
    use secrecy::ExposeSecret;
    let options = cancelgate_ledger::LedgerOptions {
        max_connections: settings.ledger.max_connections,
        lease: std::time::Duration::from_millis(settings.ledger.lease_ms),
        sqlite_sync: match settings.ledger.sqlite_synchronous {
            crate::settings::SqliteSynchronous::Full => cancelgate_ledger::SqliteSync::Full,
            crate::settings::SqliteSynchronous::Normal => cancelgate_ledger::SqliteSync::Normal,
        },
        ..Default::default()
    };
    Ok(cancelgate_ledger::Ledger::connect(settings.ledger.url.expose_secret(), options).await?)
}

//! `cancelgate`: the gateway binary. `main` only wires; the work is in the crates.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use cancelgate_gateway::settings::Redacted;
use cancelgate_gateway::{Application, Settings};
use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider};
use clap::{CommandFactory, FromArgMatches, Subcommand};

mod sandbox_cli;

/// jemalloc, not glibc's malloc: a cancel allocates a few hundred small blocks across the tokio
/// workers and the ledger's threads, where glibc's arenas spend a quarter of the gateway's
/// instructions and keep more memory resident (BENCHMARKS.md, issue 20).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, clap::Parser)]
#[command(
    name = "cancelgate",
    version,
    about = "One HTTP gateway that cancels reservations and bookings at several upstream providers.",
    after_help = "Examples:\n  cancelgate serve --sandbox      # zero-setup demo: built-in provider simulators, SQLite ledger\n  \
                  cancelgate check-config         # validate config/ and print it, secrets redacted\n  \
                  cancelgate migrate              # apply the ledger migrations (serve also does by default)\n  \
                  cancelgate healthcheck          # exit 0 when the local gateway answers /healthz (container probe)\n  \
                  CANCELGATE__LISTEN=0.0.0.0:8080 cancelgate serve\n\n\
                  Configuration: <config-dir>/gateway.toml and <config-dir>/providers/*.toml, then CANCELGATE__<KEY>__<SUB>\n\
                  environment overrides. Operations endpoints: /healthz /readyz /metrics /openapi.json /docs /errors."
)]
struct Cli {
    /// Directory holding gateway.toml and providers/*.toml.
    #[arg(long, global = true, env = "CANCELGATE_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve {
        /// Start the provider simulators in-process and point every provider at them.
        #[arg(long)]
        sandbox: bool,
    },
    /// Load and validate the configuration; print it with every secret redacted.
    ///
    /// A problem is printed as one line naming the file and key, and the exit status is 1
    /// (validation stops at the first problem: fix it and run again).
    CheckConfig,
    /// Probe the local gateway's /healthz; exit 0 when it answers 200 (a container HEALTHCHECK
    /// that needs no curl in the image).
    Healthcheck {
        /// Where the gateway listens; default: the port of `listen` in the configuration, on 127.0.0.1.
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Apply the ledger's migrations (`serve` also does, unless `ledger.migrate_on_start = false`).
    Migrate,
    /// Run the provider simulators alone.
    Sandbox(sandbox_cli::SandboxArgs),
}

fn main() -> std::process::ExitCode {
    let matches = sandbox_cli::with_provider_flags(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sandbox_matches = matches.subcommand_matches("sandbox").cloned();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cancelgate: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, sandbox_matches));
    // Background tasks still running (cancellations left `processing`) are dropped here: they
    // resume at the next start. Never wait on them past the grace `serve` already gave.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cancelgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, sandbox_matches: Option<clap::ArgMatches>) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve { sandbox: false }) {
        Command::Serve { sandbox } => serve(&cli.config_dir, sandbox).await,
        Command::CheckConfig => {
            let settings = Settings::load(&cli.config_dir)?;
            cancelgate_gateway::registry::Registry::build(&settings)?;
            // Written, not printed: a closed pipe (`| head`) must not panic.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", Redacted(&settings)).and_then(|()| writeln!(out, "# configuration OK"));
            Ok(())
        }
        Command::Healthcheck { addr, timeout_ms } => {
            let addr = match addr {
                Some(addr) => addr,
                None => {
                    let listen = Settings::load(&cli.config_dir)?.listen;
                    let ip = if listen.ip().is_unspecified() {
                        if listen.is_ipv4() {
                            std::net::Ipv4Addr::LOCALHOST.into()
                        } else {
                            std::net::Ipv6Addr::LOCALHOST.into()
                        }
                    } else {
                        listen.ip()
                    };
                    SocketAddr::new(ip, listen.port())
                }
            };
            let status = tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), probe(addr))
                .await
                .map_err(|_| anyhow::anyhow!("no answer from http://{addr}/healthz within {timeout_ms} ms"))??;
            anyhow::ensure!(status == 200, "http://{addr}/healthz answered {status}");
            println!("healthy: http://{addr}/healthz answered 200");
            Ok(())
        }
        Command::Migrate => {
            let settings = Settings::load(&cli.config_dir)?;
            let ledger = cancelgate_gateway::startup::connect_ledger(&settings).await?;
            ledger.migrate().await.context("cannot apply the ledger migrations")?;
            println!("ledger migrated ({})", ledger.backend());
            Ok(())
        }
        Command::Sandbox(args) => {
            init_logging(None, None);
            let config = args.config(sandbox_matches.as_ref());
            let sandbox = Sandbox::start(config).await.context("cannot start the sandbox")?;
            for p in SimulatedProvider::ALL {
                tracing::info!(provider = p.id(), url = %sandbox.base_url(p), "simulator listening");
            }
            shutdown_signal().await;
            sandbox.shutdown().await;
            Ok(())
        }
    }
}

async fn serve(config_dir: &std::path::Path, with_sandbox: bool) -> anyhow::Result<()> {
    let mut settings = Settings::load(config_dir)?;
    init_logging(settings.log.format.as_deref(), settings.log.level.as_deref());
    let sandbox = if with_sandbox {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.context("cannot start the sandbox")?;
        for p in SimulatedProvider::ALL {
            let url = sandbox.base_url(p);
            if let Some(provider) = settings.providers.get_mut(p.id()) {
                provider.base_url = url.parse().with_context(|| format!("sandbox URL {url}"))?;
            }
            tracing::info!(provider = p.id(), %url, "provider points at the built-in sandbox");
        }
        Some(sandbox)
    } else {
        None
    };
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}

/// JSON logs in containers, readable ones on a terminal; `RUST_LOG` wins over the configured level.
fn init_logging(format: Option<&str>, level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// `GET /healthz` over a plain TCP connection: the status code of the answer.
async fn probe(addr: SocketAddr) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.context("cannot send the probe")?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await.context("cannot read the answer")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
    status.ok_or_else(|| anyhow::anyhow!("not an HTTP answer from {addr}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

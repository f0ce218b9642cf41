//! `apex-venue`: runs the local Bybit-V5-compatible exchange on loopback until SIGINT/SIGTERM or `--duration`.

use std::path::PathBuf;
use std::process::ExitCode;

use apex_venue::{AccountSpec, FaultPlan, Venue, VenueConfig, VenueError, read_accounts};
use clap::Parser;

/// A local exchange that speaks Bybit's V5 protocol (REST, public and private WebSockets) over the simulated market.
/// Loopback only. Point any Bybit client at the URLs it writes to --ready (or prints).
#[derive(Debug, Parser)]
#[command(name = "apex-venue", version)]
struct Args {
    /// Comma-separated symbols to trade (instrument presets).
    #[arg(long, default_value = "BTCUSDT,ETHUSDT,SOLUSDT", value_delimiter = ',')]
    symbols: Vec<String>,
    /// Seed of the market (each symbol derives its own).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// DSG JSON document of the market's agent populations (default: the built-in DSG).
    #[arg(long)]
    dsg: Option<PathBuf>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Accounts file: JSON array of {"name", "api_key", "api_secret", "balance"?, "latency_ms"?}. Without it, one
    /// account is generated and printed.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Fault plan (TOML); see examples/venue/faults.toml.
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Where to log each injected fault (JSON lines with its wall-clock time).
    #[arg(long)]
    fault_log: Option<PathBuf>,
    /// Loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write {"rest", "ws_public", "ws_private", "accounts": [...]} here once listening (atomically, mode 0600);
    /// removed when the venue stops.
    #[arg(long)]
    ready: Option<PathBuf>,
    /// Stop after this long on the wall clock: seconds, or a number with a unit ms, s, m, h or d (90, 1.5s, 10m);
    /// default: run until SIGINT/SIGTERM.
    #[arg(long)]
    duration: Option<String>,
}

fn config(args: Args) -> Result<(VenueConfig, bool), VenueError> {
    let (accounts, generated) = match &args.accounts {
        Some(path) => (read_accounts(path)?, false),
        None => (vec![AccountSpec::generate("account-1")], true),
    };
    let mut config = VenueConfig::new(accounts);
    config.symbols = args.symbols.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    config.seed = args.seed;
    config.speed = args.speed;
    if let Some(path) = &args.dsg {
        let text = std::fs::read_to_string(path)
            .map_err(|e| VenueError::Input(format!("{}: cannot read: {e}", path.display())))?;
        config.dsg =
            apex_sim::Dsg::from_json_str(&text).map_err(|e| VenueError::Input(format!("{}: {e}", path.display())))?;
    }
    if let Some(path) = &args.faults {
        config.faults = FaultPlan::read(path)?;
    }
    config.fault_log = args.fault_log;
    config.port = args.port;
    config.ready = args.ready;
    config.duration = args
        .duration
        .as_deref()
        .map(apex_core::text::parse_duration)
        .transpose()
        .map_err(|e| VenueError::Input(format!("--duration: {e}")))?;
    config.validate()?;
    Ok((config, generated))
}

async fn serve(config: VenueConfig, generated: bool) -> Result<(), VenueError> {
    let venue = Venue::start(config.clone()).await?;
    println!("apex-venue listening on {} (REST), {} and {}", venue.rest_url(), venue.public_url(), venue.private_url());
    if generated {
        // The operator needs the generated keys; they are local to this venue and printed once, never logged.
        for a in &config.accounts {
            println!("account {}: api_key={} api_secret={}", a.name, a.api_key, a.api_secret);
        }
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| VenueError::Io(format!("cannot watch SIGTERM: {e}")))?;
    let until = async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
        () = until => "--duration elapsed",
        () = apex_core::process::launcher_gone() => "apexctl, which launched it, is gone",
    };
    tracing::info!(reason, faults = ?venue.fault_counts(), "stopping");
    venue.stop().await;
    println!("apex-venue stopped ({reason})");
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APEX_VENUE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (config, generated) = match config(args) {
        Ok(c) => c,
        Err(error) => {
            eprintln!("apex-venue: error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("apex-venue: error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config, generated)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ VenueError::Input(_)) => {
            eprintln!("apex-venue: error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("apex-venue: error: {error}");
            ExitCode::from(1)
        }
    }
}

//! The `apex-nexus` binary: reads the config, checks bundles and keys, then runs the live engine until the duration
//! passes or SIGINT/SIGTERM. Exit codes: 0 stopped as asked, 1 runtime failure, 2 bad input (nothing connected),
//! 3 the run folder is held by another engine.

use std::path::PathBuf;
use std::process::ExitCode;

use apex_nexus::config::{Config, VenueKind, parse_duration};
use apex_nexus::engine::{Engine, Options, Prepared};
use apex_nexus::{EXIT_INPUT, NexusError};
use clap::Parser;

/// The live engine: trades exported bundles, one per slot, and books everything in OUT/ledger.sqlite.
#[derive(Debug, Parser)]
#[command(name = "apex-nexus", version)]
struct Args {
    /// The engine's TOML config (see examples/nexus/).
    #[arg(long)]
    config: PathBuf,
    /// Override the config's venue: local, testnet or mainnet.
    #[arg(long)]
    venue: Option<String>,
    /// A running local venue's ready file (overrides venue.ready).
    #[arg(long)]
    venue_ready: Option<PathBuf>,
    /// The run folder (ledger, pid file, status, logs); a rerun with the same folder resumes and reconciles.
    #[arg(long)]
    out: PathBuf,
    /// Stop after this long (wall clock), e.g. 90s, 10m; default: until SIGINT/SIGTERM.
    #[arg(long)]
    duration: Option<String>,
    /// Required to trade on mainnet (real money).
    #[arg(long)]
    i_understand_mainnet: bool,
    /// Check the config, every slot's bundle and (testnet/mainnet) the keys, then exit: nothing is created or
    /// connected, and a local venue's ready file is not needed.
    #[arg(long)]
    check: bool,
}

fn options(args: Args) -> Result<Options, NexusError> {
    let mut config = Config::read(&args.config)?;
    let bad = |message: String| NexusError::Config { path: args.config.clone(), message };
    if let Some(venue) = &args.venue {
        config.venue.kind = VenueKind::parse(venue)
            .ok_or_else(|| bad(format!("--venue must be local, testnet or mainnet, got {venue:?}")))?;
    }
    if let Some(ready) = args.venue_ready {
        config.venue.ready = Some(ready);
    }
    let duration =
        args.duration.as_deref().map(parse_duration).transpose().map_err(|e| bad(format!("--duration: {e}")))?;
    Ok(Options { config, out: args.out, duration, mainnet_confirmed: args.i_understand_mainnet })
}

async fn run(prepared: Prepared) -> Result<(), NexusError> {
    let address = prepared.metrics_address();
    let (mut engine, private, public) = Engine::connect(prepared).await?;
    engine.metrics().serve(address).await.map_err(|e| NexusError::Runtime(format!("metrics {address}: {e}")))?;
    engine.reconcile().await?;
    let summary = engine.run(private, public).await?;
    tracing::info!(?summary, "stopped");
    Ok(())
}

/// Log filter without `APEX_NEXUS_LOG`: the supervisors' per-event "consumer too slow" warnings are counted in the
/// feed's stats instead of written one line each (a flood of them is itself what slows the consumer).
const DEFAULT_LOG: &str = "info,apex_bybit::client::ws=error";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APEX_NEXUS_LOG").unwrap_or_else(|_| DEFAULT_LOG.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            let first = e.to_string();
            eprintln!("apex-nexus: {}", first.lines().next().unwrap_or("bad arguments").trim_start_matches("error: "));
            return ExitCode::from(EXIT_INPUT);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if args.check {
        return match options(args).and_then(|options| Prepared::check(&options)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("apex-nexus: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let outcome = options(args).and_then(Prepared::new).and_then(|prepared| {
        // One thread for the loop, the WebSocket supervisors and the order tasks: a frame handed from a worker
        // thread to the loop on another waited for a free core (queued p50 0.7-1.1 ms of a 1.1-1.2 ms frame-to-staged
        // p50 on 2 cores shared with the venue); on one thread it waits only for the work before it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NexusError::Runtime(format!("runtime: {e}")))?;
        runtime.block_on(run(prepared))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apex-nexus: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

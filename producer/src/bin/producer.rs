//! The `producer` binary: a camera simulator (or a file, a pipe, a real camera) feeding a
//! framepipe stream. All the work is in the `producer` library; this file parses the
//! command line, sets up logging and turns the outcome into an exit code.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use producer::ProducerArgs;
use tracing_subscriber::EnvFilter;

/// Exit code for a usage error (bad arguments).
const USAGE: u8 = 2;
/// Exit code for a wait that timed out (`--wait-seats`).
const TIMEOUT: u8 = 4;

/// Publish video frames into shared memory for framepipe consumers.
#[derive(Parser, Debug)]
#[command(name = "producer", version, about, after_help = producer::cli::EXAMPLES)]
struct Cli {
    #[command(flatten)]
    args: ProducerArgs,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Only warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("producer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return Ok(if usage {
                ExitCode::from(USAGE)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let config = match cli.args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("producer: error: {:#}", anyhow::Error::from(e));
            return Ok(ExitCode::from(USAGE));
        }
    };
    match producer::run(&config) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // --wait-seats gave up: a timeout, as for a consumer that waits for a producer.
        Err(e @ producer::RunError::TooFewConsumers { .. }) => {
            eprintln!("producer: error: stream {}: {e}", config.stream);
            Ok(ExitCode::from(TIMEOUT))
        }
        Err(e) => Err(e).with_context(|| format!("stream {}", config.stream)),
    }
}

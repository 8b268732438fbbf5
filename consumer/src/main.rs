//! The `consumer` binary: parses the command line and runs one command of the library,
//! printing results and one clear error line, with DESIGN.md's exit codes.
#![forbid(unsafe_code)]

mod cli;
mod control;
mod signals;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::Parser;
use consumer::demo::{self, DemoOptions, Demoed};
use consumer::output::OutputFile;
use consumer::record::Cut;
use consumer::stats::{Progress, Summary};
use consumer::view::{self, Viewed};
use consumer::{End, Error, Session, pipe, record, snapshot, stats};

use crate::cli::{Cli, Command, Config};

/// The hidden subcommand that runs the producer library (for `demo` and tests):
/// `consumer __producer [producer options]`.
const PRODUCER_SUBCOMMAND: &str = "__producer";

const OK: u8 = 0;
const FAILED: u8 = 1;
const USAGE: u8 = 2;
const NO_PRODUCER: u8 = 3;
const TIMEOUT: u8 = 4;
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("consumer: error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == PRODUCER_SUBCOMMAND) {
        return run_producer(args);
    }
    let config = match Cli::try_parse_from(&args) {
        Ok(cli) => cli.into_config(),
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { USAGE } else { OK }));
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("consumer: error: {e}\n\nFor more information, try '--help'.");
            return Ok(ExitCode::from(USAGE));
        }
    };
    init_logs(config.log_level);
    let stop = signals::install().context("cannot set up signal handling")?;
    execute(config, &stop)
}

/// The producer's command line, as the `producer` binary takes it.
#[derive(Debug, Parser)]
#[command(
    name = "consumer __producer",
    about = "Run the producer library (for demo and tests)"
)]
struct ProducerCli {
    #[command(flatten)]
    args: demo::ProducerArgs,
}

/// Runs the producer library in this process, as the `producer` binary does:
/// `consumer __producer <producer options>`. Used by `demo` and by tests, which cannot
/// reach another package's binary.
fn run_producer(mut args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    args.remove(1);
    let cli = match ProducerCli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { USAGE } else { OK }));
        }
    };
    let config = match cli.args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("consumer: error: {:#}", anyhow::Error::from(e));
            return Ok(ExitCode::from(USAGE));
        }
    };
    init_logs("info");
    demo::run_producer(&config).with_context(|| format!("stream {}", config.stream))?;
    Ok(ExitCode::from(OK))
}

fn init_logs(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn execute(config: Config, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let Config {
        attach, command, ..
    } = config;
    match command {
        Command::View(options) => {
            // Fail before waiting for a producer if there is no display.
            view::check_display()?;
            let mut session = Session::open(attach, stop)?;
            let viewed = view::run(&mut session, &options, stop)?;
            report_view(&viewed);
            Ok(end_code(viewed.end))
        }
        Command::Stats { options, json } => {
            let mut session = Session::open(attach, stop)?;
            let (end, summary) = stats::run(&mut session, &options, stop, &mut print_progress)?;
            print_summary(&summary, json);
            Ok(end_code(end))
        }
        Command::Record { path, options } => {
            if path.as_os_str() == "-" {
                refuse_terminal_stdout()?;
            }
            let out = OutputFile::create(&path)?;
            let mut session = Session::open(attach, stop)?;
            let recorded = record::run(&mut session, out, &options, stop)?;
            eprintln!(
                "consumer: recorded {} frames ({}) to {}",
                recorded.frames,
                recorded.format,
                path.display()
            );
            report_cut(recorded.cut);
            Ok(cut_code(recorded.cut).unwrap_or_else(|| end_code(recorded.end)))
        }
        Command::Pipe { frames } => {
            refuse_terminal_stdout()?;
            let out = OutputFile::create(&PathBuf::from("-"))?;
            let mut session = Session::open(attach, stop)?;
            let format = session.format();
            let piped = pipe::run(&mut session, out, frames, stop)?;
            eprintln!(
                "consumer: piped {} raw {} frames (ffmpeg: -f rawvideo -pixel_format {} -video_size {}x{})",
                piped.frames,
                format,
                format.pixel().ffmpeg_name(),
                format.width(),
                format.height()
            );
            report_cut(piped.cut);
            Ok(cut_code(piped.cut).unwrap_or_else(|| end_code(piped.end)))
        }
        Command::Snapshot { path } => {
            let out = OutputFile::create(&path)?;
            let mut session = Session::open(attach, stop)?;
            let seq = snapshot::run(&mut session, out, stop)?;
            eprintln!("consumer: saved frame {seq} to {}", path.display());
            Ok(ExitCode::from(OK))
        }
        Command::List { json } => control::list(json),
        Command::Info { json } => control::info(&attach.stream, json),
        Command::Ctl { command, timeout } => control::ctl(&attach, &command, timeout, stop),
        Command::Meta { json, frames } => {
            let end = control::meta(&attach, json, frames, stop)?;
            Ok(end_code(end))
        }
        Command::Demo {
            size,
            fps,
            headless_for,
        } => {
            let program = std::env::current_exe().context("cannot find this program's path")?;
            let args = [
                PRODUCER_SUBCOMMAND.to_owned(),
                "--stream".to_owned(),
                attach.stream.to_string(),
                "--size".to_owned(),
                format!("{}x{}", size.width(), size.height()),
                "--fps".to_owned(),
                fps.to_string(),
            ];
            let options = DemoOptions {
                program,
                args: args.into_iter().map(OsString::from).collect(),
                attach,
                view: Default::default(),
                headless_for,
            };
            match demo::run(&options, stop, &mut print_progress)? {
                Demoed::Viewed(viewed) => {
                    report_view(&viewed);
                    Ok(end_code(viewed.end))
                }
                Demoed::Measured(end, summary) => {
                    print_summary(&summary, false);
                    Ok(end_code(end))
                }
            }
        }
    }
}

/// Video on a terminal is garbage on screen: ask for a redirection instead.
fn refuse_terminal_stdout() -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!(
            "standard output is a terminal: redirect it to a file or a pipe (e.g. `| ffplay ...`)"
        );
    }
    Ok(())
}

fn print_progress(progress: &Progress) {
    eprintln!("{progress}");
}

fn print_summary(summary: &Summary, json: bool) {
    if json {
        println!("{}", summary.to_json());
    } else {
        println!("{summary}");
    }
}

fn report_view(viewed: &Viewed) {
    let fps = if viewed.seconds > 0.0 {
        viewed.frames as f64 / viewed.seconds
    } else {
        0.0
    };
    eprintln!(
        "consumer: viewed {} frames in {:.2} s ({fps:.1} fps), skipped {}, reattached {} times",
        viewed.frames, viewed.seconds, viewed.skipped, viewed.reopens
    );
}

fn report_cut(cut: Option<Cut>) {
    match cut {
        Some(Cut::FormatChanged { old, new }) => eprintln!(
            "consumer: the stream changed format from {old} to {new}; stopped there (one file, one format)"
        ),
        Some(Cut::ReaderClosed) => eprintln!("consumer: the reader closed the pipe"),
        Some(Cut::DeliveryLost { seq }) => eprintln!(
            "consumer: error: every-frame delivery lost at seq {seq} (the producer's \
             --stall-timeout dropped this consumer back to newest-frame); the output holds \
             every frame before it"
        ),
        None => {}
    }
}

/// The exit code a cut imposes: a lost every-frame delivery is a failure (1), though the
/// output before it is complete.
fn cut_code(cut: Option<Cut>) -> Option<ExitCode> {
    matches!(cut, Some(Cut::DeliveryLost { .. })).then(|| ExitCode::from(FAILED))
}

/// The exit code of a run that ended without an error (a lost producer is reported as the
/// one error line it is, after the command's own results).
fn end_code(end: End) -> ExitCode {
    ExitCode::from(match end {
        End::Done | End::ProducerStopped => OK,
        End::ProducerLost(unattached) => {
            let error = anyhow::Error::from(Error::from(unattached));
            eprintln!("consumer: error: {error:#}");
            exit_code(&error)
        }
        End::Interrupted => INTERRUPTED,
    })
}

fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(code) = control::exit_code(error) {
        return code;
    }
    match error.downcast_ref::<Error>() {
        Some(Error::Interrupted) => INTERRUPTED,
        Some(e) if e.is_no_producer() => NO_PRODUCER,
        Some(e) if e.is_timeout() => TIMEOUT,
        _ => FAILED,
    }
}

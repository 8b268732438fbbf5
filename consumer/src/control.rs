//! The binary's side of `list`, `info`, `ctl` and `meta`: runs the library's calls and
//! prints their results (tables and lines for people, JSON for machines).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use consumer::ctl::{Controller, CtlError};
use consumer::inspect::{self, InspectError};
use consumer::meta::{self, MetaLine};
use consumer::{Attach, Error};
use control_msg::{Command, Outcome};
use frame_vocab::{FrameFormat, StreamName};
use shm_frames::{Peeked, peek};

use crate::cli::CtlCommand;

/// A `ctl` request the producer refused: one error line, exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("stream {name} refused {what}: {detail}")]
pub struct RefusedByProducer {
    name: StreamName,
    what: String,
    detail: String,
}

/// A `ctl format` the stream's pixel format makes invalid: a usage error (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("format {width}x{height} is not valid for stream {name}'s {pixel}: {source}")]
pub struct BadFormatForStream {
    name: StreamName,
    width: u32,
    height: u32,
    pixel: frame_vocab::PixelFormat,
    #[source]
    source: frame_vocab::FormatError,
}

pub fn list(json: bool) -> anyhow::Result<ExitCode> {
    let listed = inspect::list()?;
    let mut out = std::io::stdout().lock();
    if json {
        for item in &listed {
            writeln!(out, "{}", item.to_json())?;
        }
    } else {
        write!(out, "{}", inspect::list_table(&listed))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(name: &StreamName, json: bool) -> anyhow::Result<ExitCode> {
    let info = inspect::info(name)?;
    if json {
        println!("{}", info.to_json());
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `error` means "no such stream / no producer" (exit code 3) or a usage error (2).
pub fn exit_code(error: &anyhow::Error) -> Option<u8> {
    if let Some(e) = error.downcast_ref::<InspectError>() {
        return e.is_no_producer().then_some(3);
    }
    if let Some(e) = error.downcast_ref::<CtlError>() {
        return match e {
            e if e.is_interrupted() => Some(130),
            e if e.is_no_producer() => Some(3),
            e if e.is_timeout() => Some(4),
            _ => None,
        };
    }
    if error.downcast_ref::<BadFormatForStream>().is_some() {
        return Some(2);
    }
    None
}

fn format_for(
    name: &StreamName,
    width: u32,
    height: u32,
    pixel: Option<frame_vocab::PixelFormat>,
) -> anyhow::Result<FrameFormat> {
    let pixel = match pixel {
        Some(pixel) => pixel,
        // Keep the stream's own pixel format.
        None => match peek(name) {
            Ok(Peeked::Region(view)) => view.format.pixel(),
            _ => frame_vocab::PixelFormat::Bgra,
        },
    };
    FrameFormat::new(width, height, pixel).map_err(|source| {
        BadFormatForStream {
            name: name.clone(),
            width,
            height,
            pixel,
            source,
        }
        .into()
    })
}

pub fn ctl(
    attach: &Attach,
    command: &CtlCommand,
    timeout: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let name = &attach.stream;
    let mut controller = Controller::open(name, attach.wait, stop)?;
    let (request, what) = match *command {
        CtlCommand::Pause => (Command::Pause, "pause".to_owned()),
        CtlCommand::Resume => (Command::Resume, "resume".to_owned()),
        CtlCommand::Fps(fps) => (Command::SetFps { fps }, format!("fps {fps}")),
        CtlCommand::Format {
            width,
            height,
            pixel,
        } => {
            let format = format_for(name, width, height, pixel)?;
            (Command::SetFormat(format), format!("format {format}"))
        }
        CtlCommand::Pattern(pattern) => {
            (Command::SetPattern(pattern), format!("pattern {pattern}"))
        }
        CtlCommand::Ping { count, interval } => {
            return ping(&mut controller, name, count, interval, timeout, stop);
        }
        CtlCommand::Shutdown => (Command::Shutdown, "shutdown".to_owned()),
    };
    let answer = controller.request(request, timeout, stop)?;
    match answer.outcome {
        Outcome::Done => println!(
            "{}",
            match command {
                CtlCommand::Pause => format!("stream {name}: paused (no further frame follows)"),
                CtlCommand::Resume => format!("stream {name}: resumed"),
                CtlCommand::Shutdown => format!("stream {name}: the producer is stopping"),
                _ => format!("stream {name}: {what}: done"),
            }
        ),
        Outcome::FormatSet { epoch, format } => {
            println!("stream {name}: format now {format}, epoch {epoch}")
        }
        Outcome::Refused { detail, .. } => {
            return Err(RefusedByProducer {
                name: name.clone(),
                what,
                detail,
            }
            .into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctl ping`: each round trip, then a summary, like ping(8).
fn ping(
    controller: &mut Controller,
    name: &StreamName,
    count: u64,
    interval: Duration,
    timeout: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let mut rtts = Vec::with_capacity(count.min(100_000) as usize);
    let mut lost = 0u64;
    let mut out = std::io::stdout().lock();
    for n in 1..=count {
        match controller.request(Command::Ping { nonce: n }, timeout, stop) {
            Ok(answer) => {
                let ms = answer.round_trip.as_secs_f64() * 1e3;
                writeln!(out, "reply from stream {name}: seq={n} time={ms:.3} ms")?;
                rtts.push(ms);
            }
            Err(CtlError::Control(control_msg::ControlError::Timeout { .. })) => {
                writeln!(
                    out,
                    "no reply from stream {name}: seq={n} (within {timeout:?})"
                )?;
                lost += 1;
            }
            Err(e) => return Err(e.into()),
        }
        if n < count && !interval.is_zero() {
            std::thread::sleep(interval); // The asked-for pacing between requests.
        }
    }
    writeln!(out, "--- stream {name} ping statistics ---")?;
    writeln!(
        out,
        "{count} requests sent, {} answered, {:.0}% lost",
        rtts.len(),
        lost as f64 * 100.0 / count as f64
    )?;
    if !rtts.is_empty() {
        let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        let avg = rtts.iter().sum::<f64>() / rtts.len() as f64;
        let mdev = (rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / rtts.len() as f64).sqrt();
        writeln!(
            out,
            "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
        )?;
    }
    if lost == count {
        return Err(CtlError::from(control_msg::ControlError::Timeout {
            name: name.clone(),
            timeout,
        })
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn meta(
    attach: &Attach,
    json: bool,
    frames: Option<u64>,
    stop: &AtomicBool,
) -> anyhow::Result<consumer::End> {
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let summary = meta::run(attach, frames, stop, &mut |line: &MetaLine| {
        let written = if json {
            writeln!(out, "{}", line.to_json())
        } else {
            writeln!(out, "{line}")
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            failed.get_or_insert(e);
        }
    });
    if let Some(e) = failed {
        return Err(e).context("cannot write to stdout");
    }
    let summary: meta::MetaSummary = summary.map_err(|e: Error| anyhow::Error::from(e))?;
    eprintln!(
        "consumer: {} frames' metadata, {} dropped",
        summary.frames, summary.dropped
    );
    Ok(summary.end.into())
}

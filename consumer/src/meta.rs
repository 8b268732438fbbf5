//! `consumer meta`: the per-frame metadata stream, one line per frame, including the
//! frames the pixel path would have skipped.
//!
//! It takes a seat (so the producer sends it `FrameMeta`) but never takes a frame: it holds
//! no slot and waits only on its event queue's fd (`poll`). The queue holds 10 messages;
//! where the seqs jump (messages dropped while the queue was full) it reports one
//! [`MetaLine::Dropped`] with the count instead of hiding the gap. The region is looked at
//! with shm-frames' `peek` between messages to notice a producer that stops, goes or
//! replaces its region (then it moves to the new region's seat, within `--wait`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use control_msg::{Command, CommandSender, Event, EventReceiver, Sent};
use frame_vocab::{Deadline, FrameFormat};
use serde_json::json;
use shm_frames::{Health, Peeked, Reader, ReaderOptions, peek};

use crate::error::{Error, Unattached};
use crate::session::{Attach, End};

/// How long one wait on the queue lasts before the region is looked at.
const SLICE: Duration = Duration::from_millis(100);

/// One line of `meta`'s output.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaLine {
    /// A frame was published.
    Frame {
        /// Its seq.
        seq: u64,
        /// The slot it went to.
        slot: u32,
        /// Its format.
        format: FrameFormat,
        /// Capture time, CLOCK_MONOTONIC ns.
        capture_ns: u64,
        /// Publish time, CLOCK_MONOTONIC ns.
        publish_ns: u64,
        /// The producer's flags.
        flags: u32,
    },
    /// This many frames' metadata was dropped (the queue was full): the seqs jump.
    Dropped(u64),
    /// The producer moved to a new region (a format change or a restart).
    Reattached {
        /// The new region's epoch.
        epoch: u64,
        /// Its format.
        format: FrameFormat,
    },
}

impl MetaLine {
    /// One JSON object, for `--json`.
    pub fn to_json(&self) -> String {
        match self {
            MetaLine::Frame {
                seq,
                slot,
                format,
                capture_ns,
                publish_ns,
                flags,
            } => json!({
                "seq": seq,
                "slot": slot,
                "width": format.width(),
                "height": format.height(),
                "format": format.pixel().name(),
                "capture_ns": capture_ns,
                "publish_ns": publish_ns,
                "flags": flags,
            }),
            MetaLine::Dropped(count) => json!({ "dropped": count }),
            MetaLine::Reattached { epoch, format } => json!({
                "epoch": epoch,
                "width": format.width(),
                "height": format.height(),
                "format": format.pixel().name(),
            }),
        }
        .to_string()
    }
}

impl std::fmt::Display for MetaLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaLine::Frame {
                seq,
                slot,
                format,
                capture_ns,
                publish_ns,
                flags,
            } => write!(
                f,
                "seq {seq} slot {slot} {format} capture {capture_ns} publish {publish_ns} flags {flags:#x}"
            ),
            MetaLine::Dropped(count) => {
                write!(f, "dropped {count} (the queue was full)")
            }
            MetaLine::Reattached { epoch, format } => write!(f, "epoch {epoch}: {format}"),
        }
    }
}

/// What a `meta` run saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaSummary {
    /// Frame lines.
    pub frames: u64,
    /// Frames whose metadata was dropped.
    pub dropped: u64,
    /// How it ended.
    pub end: MetaEnd,
}

/// How a `meta` run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaEnd {
    /// `--frames N` lines were printed.
    Done,
    /// The producer stopped cleanly.
    ProducerStopped,
    /// SIGINT or SIGTERM.
    Interrupted,
}

impl From<MetaEnd> for End {
    fn from(end: MetaEnd) -> End {
        match end {
            MetaEnd::Done => End::Done,
            MetaEnd::ProducerStopped => End::ProducerStopped,
            MetaEnd::Interrupted => End::Interrupted,
        }
    }
}

/// A seat with its event queue, and the seq the last line named.
struct Seat {
    reader: Reader,
    events: Option<EventReceiver>,
    commands: Option<CommandSender>,
    last_seq: Option<u64>,
}

impl Seat {
    fn open(attach: &Attach, wait: Duration) -> Result<Seat, shm_frames::OpenError> {
        // Newest-frame: `meta` holds no slot, so nobody should wait for it.
        let options = ReaderOptions {
            wait,
            strategy: attach.strategy,
            delivery: shm_frames::Delivery::Newest,
        };
        let reader = Reader::open(&attach.stream, options)?;
        let mut seat = Seat {
            reader,
            events: None,
            commands: None,
            last_seq: None,
        };
        seat.open_queues(attach);
        Ok(seat)
    }

    fn open_queues(&mut self, attach: &Attach) {
        let name = &attach.stream;
        let seat = self.reader.seat();
        self.events = EventReceiver::open(name, seat)
            .inspect_err(|e| tracing::warn!("no event queue for seat {seat}: {e}"))
            .ok();
        self.commands = CommandSender::open(name).ok();
        if let Some(commands) = self.commands.as_mut() {
            let hello = Command::Hello {
                seat,
                pid: std::process::id(),
            };
            if let Ok(Sent::DroppedFull) | Err(_) = commands.send(&hello) {
                tracing::debug!("Hello dropped");
            }
        }
    }

    fn bye(&mut self) {
        let seat = self.reader.seat();
        if let Some(commands) = self.commands.as_mut() {
            let _ = commands.send(&Command::Bye { seat });
        }
    }
}

/// Prints (through `out`) the stream's per-frame metadata until `frames` lines, a clean
/// stop, `stop`, or a producer lost for longer than `attach.wait`.
pub fn run(
    attach: &Attach,
    frames: Option<u64>,
    stop: &AtomicBool,
    out: &mut dyn FnMut(&MetaLine),
) -> Result<MetaSummary, Error> {
    let unattached = |error, after_loss| -> Error {
        Unattached {
            name: attach.stream.clone(),
            wait: attach.wait,
            after_loss,
            last: Box::new(error),
        }
        .into()
    };
    let mut seat = Seat::open(attach, attach.wait).map_err(|e| unattached(e, false))?;
    let mut summary = MetaSummary {
        frames: 0,
        dropped: 0,
        end: MetaEnd::Done,
    };
    let end = loop {
        if stop.load(Ordering::Relaxed) {
            break MetaEnd::Interrupted;
        }
        if frames.is_some_and(|n| summary.frames >= n) {
            break MetaEnd::Done;
        }
        let received = match seat.events.as_mut() {
            Some(events) => events.recv_deadline(Deadline::after(SLICE)),
            None => {
                std::thread::sleep(SLICE);
                Ok(None)
            }
        };
        match received {
            Ok(Some(Event::FrameMeta {
                seq,
                slot,
                format,
                capture_ns,
                publish_ns,
                flags,
            })) => {
                if let Some(last) = seat.last_seq {
                    let gap = seq.saturating_sub(last).saturating_sub(1);
                    if gap > 0 {
                        summary.dropped += gap;
                        out(&MetaLine::Dropped(gap));
                    }
                }
                seat.last_seq = Some(seq);
                summary.frames += 1;
                out(&MetaLine::Frame {
                    seq,
                    slot,
                    format,
                    capture_ns,
                    publish_ns,
                    flags,
                });
                continue;
            }
            Ok(Some(Event::Stopping)) => break MetaEnd::ProducerStopped,
            Ok(Some(other)) => {
                tracing::debug!(event = ?other, "event");
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "event queue failed; going on without it");
                seat.events = None;
            }
        }
        // Between messages: is our region still the producer's live one?
        let moved = match peek(&attach.stream) {
            Ok(Peeked::Region(view)) => match view.health() {
                Health::Stopping => break MetaEnd::ProducerStopped,
                _ if view.epoch != seat.reader.epoch() => true,
                Health::Leftover | Health::Replaced => true,
                _ => false,
            },
            // Gone or unusable: look for the next producer within --wait.
            Ok(Peeked::Unusable { .. }) | Err(_) => true,
        };
        if moved {
            seat.bye();
            let deadline = Deadline::after(attach.wait);
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match seat.reader.reopen(deadline.remaining().min(SLICE)) {
                    Ok(()) => {
                        seat.last_seq = None;
                        seat.open_queues(attach);
                        out(&MetaLine::Reattached {
                            epoch: seat.reader.epoch(),
                            format: seat.reader.format(),
                        });
                        break;
                    }
                    Err(error) if deadline.expired() => return Err(unattached(error, true)),
                    Err(_) => {}
                }
            }
        }
    };
    seat.bye();
    summary.end = end;
    Ok(summary)
}

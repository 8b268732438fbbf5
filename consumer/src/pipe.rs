//! `consumer pipe`: raw frames of the stream format, back to back, on standard output (for
//! `ffplay -f rawvideo -pixel_format bgr0 -video_size 1920x1080 -`). Nothing else is ever
//! written there; logs go to standard error.
//!
//! Raw video has no header, so a reader expects one format for good: if the stream changes
//! format the pipe ends there. A producer restart in the same format goes on. With
//! `--every-frame`, a demotion (or any gap) ends the pipe after the last gap-free frame.

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;

use crate::error::Error;
use crate::output::OutputFile;
use crate::record::Cut;
use crate::session::{End, Loss, Outcome, SLICE, Session, delivery_loss};

/// The result of a pipe run.
#[derive(Debug)]
pub struct Piped {
    /// How the run ended.
    pub end: End,
    /// Frames written.
    pub frames: u64,
    /// Why it ended early, if it did.
    pub cut: Option<Cut>,
}

/// Writes each frame the session takes to `out` (flushed per frame, so a live reader gets
/// it at once) until the producer stops, `frames` are written, the format changes, the
/// reader goes away or `stop`.
pub fn run(
    session: &mut Session,
    mut out: OutputFile,
    frames: Option<u64>,
    stop: &AtomicBool,
) -> Result<Piped, Error> {
    let mut written = 0u64;
    let mut cut = None;
    let delivery = session.attach().delivery;
    let end = loop {
        match session.step(SLICE, stop)? {
            Outcome::Frame(frame) => {
                let loss = delivery_loss(delivery, &frame.info());
                if let Some(Loss::Before { seq }) = loss {
                    cut = Some(Cut::DeliveryLost { seq });
                    break End::Done;
                }
                // Straight from the shared slot to the pipe: no copy of ours.
                if let Err(e) = out.write_all(&frame).and_then(|()| out.flush()) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        cut = Some(Cut::ReaderClosed);
                        break End::Done;
                    }
                    return Err(out.error(e));
                }
                written += 1;
                if frames.is_some_and(|limit| written >= limit) {
                    break End::Done;
                }
                if let Some(Loss::After { seq }) = loss {
                    cut = Some(Cut::DeliveryLost { seq });
                    break End::Done;
                }
            }
            Outcome::Reattached { old, new } if old != new => {
                tracing::warn!(%old, %new, "the stream changed format: raw frames have one format, so the pipe ends here");
                cut = Some(Cut::FormatChanged { old, new });
                break End::Done;
            }
            Outcome::Reattached { .. }
            | Outcome::Idle
            | Outcome::Lost(_)
            | Outcome::Waiting
            | Outcome::Corrupt(_) => {}
            Outcome::End(end) => break end,
        }
    };
    if cut != Some(Cut::ReaderClosed) {
        out.commit()?;
    }
    Ok(Piped {
        end,
        frames: written,
        cut,
    })
}

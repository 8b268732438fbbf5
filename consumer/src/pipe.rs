//! `consumer pipe`: raw frames of the stream format, back to back, on standard output (for
//! `ffplay -f rawvideo -pixel_format bgr0 -video_size 1920x1080 -`). Nothing else is ever
//! written there; logs go to standard error.
//!
//! Raw video has no header, so a reader expects one format for good: if the stream changes
//! format the pipe ends there. A producer restart in the same format goes on.

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;

use crate::error::Error;
use crate::output::OutputFile;
use crate::record::Cut;
use crate::session::{End, Flow, Seen, Session};

/// The result of a pipe run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    let mut failed = None;
    let end = session.follow(stop, |seen| {
        match seen {
            Seen::Frame(frame) => {
                // Straight from the shared slot to the pipe: no copy of ours.
                if let Err(e) = out.write_all(&frame).and_then(|()| out.flush()) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        cut = Some(Cut::ReaderClosed);
                        return Ok(Flow::Done);
                    }
                    failed = Some(e);
                    return Ok(Flow::Done);
                }
                written += 1;
                if frames.is_some_and(|limit| written >= limit) {
                    return Ok(Flow::Done);
                }
            }
            Seen::Reopened { old, new } if old != new => {
                tracing::warn!(%old, %new, "the stream changed format: raw frames have one format, so the pipe ends here");
                cut = Some(Cut::FormatChanged { old, new });
                return Ok(Flow::Done);
            }
            Seen::Reopened { .. } | Seen::Idle | Seen::Corrupt(_) => {}
        }
        Ok(Flow::Continue)
    })?;
    if let Some(e) = failed {
        return Err(out.error(e));
    }
    if cut != Some(Cut::ReaderClosed) {
        out.commit()?;
    }
    Ok(Piped {
        end,
        frames: written,
        cut,
    })
}

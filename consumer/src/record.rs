//! `consumer record FILE|-`: the stream as a Y4M file. `i420` frames pass through bit-exact
//! and `gray8` is recorded as luma only (`Cmono`); other formats are converted to 4:2:0.
//!
//! A Y4M file has one format: if the stream's format changes mid-recording, the recording
//! ends there (a complete, valid file) and the change is reported. A producer restart in
//! the same format goes on into the same file. The frame rate in the header is `--fps`,
//! or else measured from the capture times of the first two frames (so the first frame is
//! held back until the second arrives).

use std::io;
use std::sync::atomic::AtomicBool;

use frame_vocab::Converter;
use frame_vocab::FrameFormat;

use crate::error::Error;
use crate::output::OutputFile;
use crate::session::{End, Loss, Outcome, SLICE, Session, delivery_loss};
use crate::y4m::{Chroma, Rate, Y4mWriter};

/// What to record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// The header's frame rate; `None` to measure it.
    pub rate: Option<Rate>,
    /// Stop after this many frames.
    pub frames: Option<u64>,
}

/// Why a recording ended before the producer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// `--every-frame`: the producer dropped this consumer back to newest-frame delivery
    /// (or a frame went missing): the output holds every frame before `seq`, and ends.
    DeliveryLost { seq: u64 },
    /// The stream changed format; the file holds the frames of the old one.
    FormatChanged { old: FrameFormat, new: FrameFormat },
    /// The reader of standard output went away.
    ReaderClosed,
}

/// The result of a recording (the file is complete and in place).
#[derive(Debug)]
pub struct Recorded {
    /// How the run ended.
    pub end: End,
    /// Frames written.
    pub frames: u64,
    /// The format of the frames in the file.
    pub format: FrameFormat,
    /// Why it ended early, if it did.
    pub cut: Option<Cut>,
}

/// Converts stream frames to the planes Y4M carries (or passes them through).
#[derive(Debug)]
struct Planes {
    stream: FrameFormat,
    y4m: FrameFormat,
    converter: Converter,
    buf: Vec<u8>,
}

impl Planes {
    fn new(stream: FrameFormat) -> Result<Planes, Error> {
        let pixel = Chroma::for_pixel(stream.pixel()).pixel();
        let y4m = stream.with_pixel(pixel).map_err(|_| Error::Unrecordable {
            format: stream,
            reason: "4:2:0 needs an even width and height",
        })?;
        let buf = if pixel == stream.pixel() {
            Vec::new()
        } else {
            vec![0; y4m.frame_bytes()]
        };
        Ok(Planes {
            stream,
            y4m,
            converter: Converter::new(),
            buf,
        })
    }

    /// The frame as Y4M planes: itself when the format matches (zero copy), else converted.
    fn of<'a>(&'a mut self, frame: &'a [u8]) -> Result<&'a [u8], Error> {
        if self.stream.pixel() == self.y4m.pixel() {
            return Ok(frame);
        }
        self.converter
            .convert(self.stream, frame, self.y4m.pixel(), &mut self.buf)?;
        Ok(&self.buf)
    }
}

/// The first frame, held back to measure the rate from the second.
#[derive(Debug)]
struct Pending {
    planes: Vec<u8>,
    seq: u64,
    capture_ns: u64,
    /// False once the stream moved to a new region (its seqs start again).
    measurable: bool,
}

/// Where the recording is (the output itself stays with [`run`], which commits it).
#[derive(Debug)]
enum State<'a> {
    /// No header yet: the rate is unknown until the first frames.
    Opening {
        out: &'a mut OutputFile,
        pending: Option<Pending>,
    },
    /// Header written.
    Writing(Y4mWriter<&'a mut OutputFile>),
    /// Standard output's reader went away: nothing more to write.
    Closed,
}

impl<'a> State<'a> {
    /// Adds one frame of Y4M planes.
    fn frame(
        self,
        data: &[u8],
        seq: u64,
        capture_ns: u64,
        format: FrameFormat,
        rate: Option<Rate>,
    ) -> io::Result<State<'a>> {
        match self {
            State::Writing(mut writer) => {
                writer.write_frame(data)?;
                Ok(State::Writing(writer))
            }
            State::Opening { out, pending: None } => match rate {
                Some(rate) => start(out, format, rate, None, data).map(State::Writing),
                None => Ok(State::Opening {
                    out,
                    pending: Some(Pending {
                        planes: data.to_vec(),
                        seq,
                        capture_ns,
                        measurable: true,
                    }),
                }),
            },
            State::Opening {
                out,
                pending: Some(first),
            } => {
                let rate = if first.measurable && seq > first.seq {
                    Rate::from_interval_ns(
                        capture_ns.saturating_sub(first.capture_ns) / (seq - first.seq),
                    )
                } else {
                    None
                };
                let rate = rate.unwrap_or(Rate::DEFAULT);
                start(out, format, rate, Some(&first.planes), data).map(State::Writing)
            }
            State::Closed => Ok(State::Closed),
        }
    }

    /// Writes what is held back; `false` if the reader of standard output went away.
    fn finish(self, format: FrameFormat, rate: Option<Rate>) -> io::Result<bool> {
        match self {
            State::Writing(_) => {}
            // Only one frame came: write it at the default rate.
            State::Opening {
                out,
                pending: Some(first),
            } => {
                let rate = rate.unwrap_or(Rate::DEFAULT);
                start(out, format, rate, Some(&first.planes), &[])?;
            }
            // No frame came: a valid file of no frames.
            State::Opening { out, pending: None } => {
                Y4mWriter::new(out, format, rate.unwrap_or(Rate::DEFAULT))?;
            }
            State::Closed => return Ok(false),
        }
        Ok(true)
    }
}

/// Records the stream into `out` until the producer stops, `options.frames` are written,
/// the format changes, or `stop`. On an error the output is discarded (no partial file).
pub fn run(
    session: &mut Session,
    mut out: OutputFile,
    options: &RecordOptions,
    stop: &AtomicBool,
) -> Result<Recorded, Error> {
    let path = out.path().to_owned();
    let to_stdout = out.is_stdout();
    let mut planes = Planes::new(session.format())?;
    let format = planes.y4m;
    let mut state = State::Opening {
        out: &mut out,
        pending: None,
    };
    let mut cut = None;
    let mut frames = 0u64;
    let output_error = |source: io::Error| Error::Output {
        path: path.clone(),
        source,
    };
    let broken_pipe = |e: &io::Error| to_stdout && e.kind() == io::ErrorKind::BrokenPipe;
    let delivery = session.attach().delivery;

    let end = loop {
        match session.step(SLICE, stop)? {
            Outcome::Frame(frame) => {
                let info = frame.info();
                let loss = delivery_loss(delivery, &info);
                if let Some(Loss::Before { seq }) = loss {
                    cut = Some(Cut::DeliveryLost { seq });
                    break End::Done;
                }
                let data = planes.of(&frame)?;
                let current = std::mem::replace(&mut state, State::Closed);
                match current.frame(data, info.seq, info.capture_ns, format, options.rate) {
                    Ok(next) => state = next,
                    Err(e) if broken_pipe(&e) => {
                        cut = Some(Cut::ReaderClosed);
                        break End::Done;
                    }
                    Err(e) => return Err(output_error(e)),
                }
                frames += 1;
                if options.frames.is_some_and(|limit| frames >= limit) {
                    break End::Done;
                }
                if let Some(Loss::After { seq }) = loss {
                    cut = Some(Cut::DeliveryLost { seq });
                    break End::Done;
                }
            }
            Outcome::Reattached { old, new } if old != new => {
                tracing::warn!(%old, %new, "the stream changed format: a Y4M file has one format, so the recording ends here");
                cut = Some(Cut::FormatChanged { old, new });
                break End::Done;
            }
            Outcome::Reattached { .. } => {
                if let State::Opening {
                    pending: Some(first),
                    ..
                } = &mut state
                {
                    first.measurable = false;
                }
            }
            Outcome::Idle | Outcome::Lost(_) | Outcome::Waiting | Outcome::Corrupt(_) => {}
            Outcome::End(end) => break end,
        }
    };

    match state.finish(format, options.rate) {
        Ok(true) => out.commit()?,
        Ok(false) => {}
        Err(e) if broken_pipe(&e) => cut = Some(Cut::ReaderClosed),
        Err(e) => return Err(output_error(e)),
    }
    Ok(Recorded {
        end,
        frames,
        format,
        cut,
    })
}

/// Writes the header, the held-back first frame if any, then `data` (if not empty).
fn start<'a>(
    out: &'a mut OutputFile,
    format: FrameFormat,
    rate: Rate,
    first: Option<&[u8]>,
    data: &[u8],
) -> io::Result<Y4mWriter<&'a mut OutputFile>> {
    let mut writer = Y4mWriter::new(out, format, rate)?;
    tracing::info!(%format, %rate, "recording");
    for frame in first
        .into_iter()
        .chain(Some(data).filter(|d| !d.is_empty()))
    {
        writer.write_frame(frame)?;
    }
    Ok(writer)
}

//! `consumer snapshot FILE.png`, and the PNG encoding the viewer's `s` key shares: a frame
//! of any stream format converted to RGB and written as PNG.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use frame_vocab::Converter;
use frame_vocab::{FrameFormat, PixelFormat};
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::error::Error;
use crate::output::OutputFile;
use crate::session::{End, Outcome, SLICE, Session};

/// Converts frames to RGB and encodes them as PNG, reusing its buffers.
#[derive(Debug, Default)]
pub struct PngWriter {
    converter: Converter,
    rgb: Vec<u8>,
}

impl PngWriter {
    /// A writer with empty buffers (they grow on first use).
    pub fn new() -> PngWriter {
        PngWriter::default()
    }

    /// Encodes `frame`, one frame of `format`, as an RGB PNG into `out` and commits it.
    pub fn write(
        &mut self,
        mut out: OutputFile,
        format: FrameFormat,
        frame: &[u8],
    ) -> Result<(), Error> {
        let rgb_format = format.with_pixel(PixelFormat::Rgb24).map_err(|source| {
            Error::Convert(frame_vocab::ConvertError::Format {
                from: format,
                to: PixelFormat::Rgb24,
                source,
            })
        })?;
        self.rgb.resize(rgb_format.frame_bytes(), 0);
        self.converter
            .convert(format, frame, PixelFormat::Rgb24, &mut self.rgb)?;
        let encoder =
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
        encoder
            .write_image(
                &self.rgb,
                format.width(),
                format.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|source| match source {
                image::ImageError::IoError(io) => Error::Output {
                    path: out.path().to_owned(),
                    source: io,
                },
                source => Error::Png {
                    path: out.path().to_owned(),
                    source,
                },
            })?;
        out.commit()
    }

    /// Encodes `frame` as a PNG file at `path` (written whole or not at all).
    pub fn save(&mut self, path: &Path, format: FrameFormat, frame: &[u8]) -> Result<(), Error> {
        self.write(OutputFile::create(path)?, format, frame)
    }
}

/// Takes one frame (waiting up to `--wait` for it) and writes it to `out` as PNG. Returns
/// the frame's seq.
pub fn run(session: &mut Session, out: OutputFile, stop: &AtomicBool) -> Result<u64, Error> {
    let start = Instant::now();
    let wait = session.attach().wait;
    let name = session.attach().stream.clone();
    let mut format = session.format();
    let mut png = PngWriter::new();
    let mut out = Some(out);
    loop {
        match session.step(SLICE, stop)? {
            Outcome::Frame(frame) => {
                if let Some(out) = out.take() {
                    png.write(out, format, &frame)?;
                }
                return Ok(frame.info().seq);
            }
            Outcome::Reattached { new, .. } => format = new,
            Outcome::Idle if start.elapsed() >= wait => {
                return Err(Error::Timeout { name, wait });
            }
            Outcome::Idle | Outcome::Lost(_) | Outcome::Waiting | Outcome::Corrupt(_) => {}
            Outcome::End(End::ProducerLost(unattached)) => return Err(unattached.into()),
            Outcome::End(End::Interrupted) => return Err(Error::Interrupted),
            // `Done` comes only after another end, which returned already.
            Outcome::End(End::ProducerStopped | End::Done) => {
                return Err(Error::ProducerStopped { name });
            }
        }
    }
}

//! The `raw:-` source: raw frames of the stream format, back to back, read from stdin (or
//! any reader) straight into the slot — what `ffmpeg -f rawvideo -pix_fmt bgr0 -` writes.

use std::io::{self, Read};

use frame_vocab::FrameFormat;
use frame_vocab::PatternKind;

use crate::source::{Filled, FrameSource, SourceError};

/// Reads exactly `format().frame_bytes()` per frame. A clean end of input between frames
/// ends the stream; an end inside a frame is an error naming the frame.
pub struct RawSource {
    reader: Box<dyn Read + Send>,
    input: String,
    format: FrameFormat,
    /// Whole frames read so far.
    frames: u64,
}

impl std::fmt::Debug for RawSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSource")
            .field("input", &self.input)
            .field("format", &self.format)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl RawSource {
    /// Raw frames of `format` from standard input.
    pub fn stdin(format: FrameFormat) -> RawSource {
        RawSource::from_reader(io::stdin(), "stdin", format)
    }

    /// Raw frames of `format` from `reader`; `input` names it in messages.
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        input: impl Into<String>,
        format: FrameFormat,
    ) -> RawSource {
        RawSource {
            reader: Box::new(reader),
            input: input.into(),
            format,
            frames: 0,
        }
    }
}

impl FrameSource for RawSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        format!("raw frames from {} ({})", self.input, self.format)
    }

    fn fill(&mut self, _seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        let expected = self.format.frame_bytes();
        if dst.len() != expected {
            return Err(SourceError::FrameLength {
                format: self.format,
                expected,
                got: dst.len(),
            });
        }
        // `read_exact`, but counting, so an end of input can be told apart: before the
        // first byte (a clean end) or inside the frame (truncated).
        let frame = self.frames + 1;
        let mut got = 0;
        while got < expected {
            match self.reader.read(&mut dst[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Read {
                        input: self.input.clone(),
                        frame,
                        source,
                    });
                }
            }
        }
        if got == 0 {
            tracing::debug!(input = %self.input, frames = self.frames, "raw input ended");
            return Ok(Filled::End);
        }
        if got < expected {
            return Err(SourceError::TruncatedRaw {
                input: self.input.clone(),
                frame,
                got,
                expected,
            });
        }
        self.frames = frame;
        Ok(Filled::Frame { capture_ns: None })
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "raw frames from {} are {}; they cannot be switched to {format} (restart the \
             producer with the new --size/--format and a matching input)",
            self.input, self.format
        )))
    }

    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "raw frames from {} have no test pattern to switch to {pattern}",
            self.input
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_vocab::PixelFormat;

    /// A reader that hands out at most `chunk` bytes per call, to exercise short reads.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn frames(format: FrameFormat, count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                (0..format.frame_bytes())
                    .map(|b| (b * 7 + i * 13) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn reads_exact_frames_then_ends() {
        let format = FrameFormat::new(6, 4, PixelFormat::I420).unwrap();
        let clip = frames(format, 3);
        let reader = Trickle {
            data: clip.concat(),
            at: 0,
            chunk: 5,
        };
        let mut source = RawSource::from_reader(reader, "test", format);
        let mut dst = vec![0; format.frame_bytes()];
        for (i, expected) in clip.iter().enumerate() {
            let filled = source.fill(i as u64 + 1, &mut dst).unwrap();
            assert_eq!(filled, Filled::Frame { capture_ns: None });
            assert_eq!(&dst, expected, "frame {i}");
        }
        assert_eq!(source.fill(4, &mut dst).unwrap(), Filled::End);
        assert_eq!(source.fill(5, &mut dst).unwrap(), Filled::End);
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let format = FrameFormat::new(4, 2, PixelFormat::Bgra).unwrap();
        let mut data = frames(format, 2).concat();
        data.truncate(32 + 20);
        let mut source = RawSource::from_reader(io::Cursor::new(data), "stdin", format);
        let mut dst = vec![0; 32];
        assert!(matches!(source.fill(1, &mut dst), Ok(Filled::Frame { .. })));
        let err = source.fill(2, &mut dst).unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::TruncatedRaw {
                    frame: 2,
                    got: 20,
                    expected: 32,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "stdin: truncated raw frame 2: got 20 of 32 bytes"
        );
    }

    #[test]
    fn read_errors_and_wrong_slots_are_errors() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("device gone"))
            }
        }
        let format = FrameFormat::new(4, 2, PixelFormat::Gray8).unwrap();
        let mut source = RawSource::from_reader(Broken, "pipe", format);
        assert!(matches!(
            source.fill(1, &mut [0; 8]),
            Err(SourceError::Read { frame: 1, .. })
        ));
        assert!(matches!(
            source.fill(1, &mut [0; 9]),
            Err(SourceError::FrameLength { .. })
        ));
        assert!(matches!(
            source.set_format(format),
            Err(SourceError::Unsupported(_))
        ));
        assert!(matches!(
            source.set_pattern(PatternKind::Bars),
            Err(SourceError::Unsupported(_))
        ));
    }
}

//! The `y4m:FILE` / `y4m:-` source: a yuv4mpeg2 stream (what `ffmpeg -f yuv4mpegpipe`
//! writes), header and frames decoded with the `y4m` crate.
//!
//! The stream's size comes from the file. 8-bit 4:2:0 (`C420`, `C420jpeg`, `C420paldv`,
//! `C420mpeg2`, or no `C` tag) is `i420` and `Cmono` is `gray8`; those bytes pass through
//! bit-exact unless another pixel format is asked for, which is converted to. Any other
//! colour space (4:2:2, 4:4:4, high bit depth, ...) is refused, by name. The frame rate
//! of the header is the source's native rate. A file can loop; standard input cannot.
//!
//! Not zero-copy: the crate reads each frame into a buffer of its own (it has no call that
//! reads into a caller's buffer), and `fill` copies the planes from there into the slot
//! (or into the conversion buffer): one copy per frame, where the other sources write the
//! slot directly. The crate also cannot name a colour space it does not know (it says
//! only "unknown"), so such an error cannot either.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat};

use crate::source::{Filled, FrameSource, SourceError};
use frame_vocab::convert::Converter;

/// Where a Y4M stream comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Y4mInput {
    /// A file, which can be reopened to loop.
    File(PathBuf),
    /// Standard input (read once).
    Stdin,
}

impl Y4mInput {
    fn name(&self) -> String {
        match self {
            Y4mInput::File(path) => path.display().to_string(),
            Y4mInput::Stdin => "stdin".to_owned(),
        }
    }
}

/// What the header says, as the `y4m` crate decoded it.
#[derive(Clone, Debug, PartialEq)]
struct Header {
    format: FrameFormat,
    colorspace: String,
    fps: Option<f64>,
    full_range: bool,
}

/// A reader that counts the bytes it hands out, so the source can tell a clean end of
/// input (nothing read since the last frame) from a frame cut short.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Relaxed: the counter is only read on this thread, between decoder calls.
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Decoder = ::y4m::Decoder<Box<dyn Read + Send>>;

/// Reads frames from a Y4M stream.
pub struct Y4mSource {
    input: Y4mInput,
    header: Header,
    decoder: Decoder,
    /// Bytes the decoder has pulled from the input.
    consumed: Arc<AtomicU64>,
    /// The stream format: the file's size, its own pixel format or the one asked for.
    format: FrameFormat,
    looping: bool,
    /// Frames read in the current pass over the input (numbers errors).
    frame_in_pass: u64,
    converter: Converter,
    /// The file's frame, when it is converted to another pixel format.
    native: Vec<u8>,
}

impl std::fmt::Debug for Y4mSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("input", &self.input)
            .field("header", &self.header)
            .field("format", &self.format)
            .field("looping", &self.looping)
            .finish_non_exhaustive()
    }
}

impl Y4mSource {
    /// Opens `input`. `pixel` converts every frame to that pixel format; `None` keeps the
    /// file's own (`i420` or `gray8`). `looping` restarts a file at its end; it is refused
    /// for standard input.
    pub fn open(
        input: Y4mInput,
        pixel: Option<PixelFormat>,
        looping: bool,
    ) -> Result<Y4mSource, SourceError> {
        let reader: Box<dyn Read + Send> = match &input {
            Y4mInput::File(path) => Box::new(open_file(path)?),
            Y4mInput::Stdin => {
                if looping {
                    return Err(SourceError::Unsupported(
                        "--loop needs a y4m file; standard input cannot be rewound".to_owned(),
                    ));
                }
                Box::new(io::stdin())
            }
        };
        Y4mSource::from_parts(input, reader, pixel, looping)
    }

    /// A source reading the Y4M stream `reader`, which `input` names (and reopens, if it
    /// is a file and `looping`).
    pub fn from_reader(
        input: Y4mInput,
        reader: impl Read + Send + 'static,
        pixel: Option<PixelFormat>,
        looping: bool,
    ) -> Result<Y4mSource, SourceError> {
        Y4mSource::from_parts(input, Box::new(reader), pixel, looping)
    }

    fn from_parts(
        input: Y4mInput,
        reader: Box<dyn Read + Send>,
        pixel: Option<PixelFormat>,
        looping: bool,
    ) -> Result<Y4mSource, SourceError> {
        let consumed = Arc::new(AtomicU64::new(0));
        let (header, decoder) = start(&input, reader, &consumed)?;
        let format = match pixel {
            None => header.format,
            Some(pixel) => {
                header
                    .format
                    .with_pixel(pixel)
                    .map_err(|source| SourceError::Y4mFormat {
                        input: input.name(),
                        source,
                    })?
            }
        };
        if header.full_range {
            tracing::warn!(
                input = %input.name(),
                "y4m header says XCOLORRANGE=FULL; framepipe treats YUV as limited range"
            );
        }
        tracing::debug!(input = %input.name(), colorspace = %header.colorspace, %format, "y4m opened");
        Ok(Y4mSource {
            input,
            header,
            decoder,
            consumed,
            format,
            looping,
            frame_in_pass: 0,
            converter: Converter::new(),
            native: Vec::new(),
        })
    }

    /// The file's own format (`i420` or `gray8` at the file's size).
    pub fn file_format(&self) -> FrameFormat {
        self.header.format
    }

    /// Reads the next frame of this pass into `dst`; `false` at a clean end of input.
    fn read_frame(&mut self, dst: &mut [u8]) -> Result<bool, SourceError> {
        let frame_number = self.frame_in_pass + 1;
        let before = self.consumed.load(Ordering::Relaxed);
        let frame = match self.decoder.read_frame() {
            Ok(frame) => frame,
            Err(::y4m::Error::EOF) if self.consumed.load(Ordering::Relaxed) == before => {
                return Ok(false);
            }
            Err(::y4m::Error::EOF) => {
                return Err(self.truncated(frame_number, before));
            }
            Err(::y4m::Error::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(self.truncated(frame_number, before));
            }
            Err(source) => {
                return Err(SourceError::Y4m {
                    input: self.input.name(),
                    frame: frame_number,
                    source,
                });
            }
        };
        let planes = [
            frame.get_y_plane(),
            frame.get_u_plane(),
            frame.get_v_plane(),
        ];
        let passthrough = self.format == self.header.format;
        let out: &mut [u8] = if passthrough {
            dst
        } else {
            self.native.resize(self.header.format.frame_bytes(), 0);
            &mut self.native
        };
        let mut at = 0;
        for plane in planes {
            let Some(span) = out.get_mut(at..at + plane.len()) else {
                break;
            };
            span.copy_from_slice(plane);
            at += plane.len();
        }
        if at != out.len() {
            // Cannot happen for the even sizes accepted here; an error rather than a panic.
            return Err(SourceError::FrameLength {
                format: self.header.format,
                expected: out.len(),
                got: at,
            });
        }
        if !passthrough {
            self.converter
                .convert(self.header.format, &self.native, self.format.pixel(), dst)?;
        }
        self.frame_in_pass = frame_number;
        Ok(true)
    }

    fn truncated(&self, frame: u64, before: u64) -> SourceError {
        SourceError::TruncatedY4m {
            input: self.input.name(),
            frame,
            got: self.consumed.load(Ordering::Relaxed) - before,
            frame_bytes: self.header.format.frame_bytes(),
        }
    }

    /// Starts the file again from its header, for `--loop`.
    fn rewind(&mut self) -> Result<(), SourceError> {
        let Y4mInput::File(path) = &self.input else {
            return Err(SourceError::Unsupported(
                "standard input cannot be rewound".to_owned(),
            ));
        };
        let reader = Box::new(open_file(path)?);
        let consumed = Arc::new(AtomicU64::new(0));
        let (header, decoder) = start(&self.input, reader, &consumed)?;
        if header.format != self.header.format {
            return Err(SourceError::Y4mChanged {
                input: self.input.name(),
                was: self.header.format,
                now: header.format,
            });
        }
        tracing::debug!(input = %self.input.name(), frames = self.frame_in_pass, "y4m loops");
        self.decoder = decoder;
        self.consumed = consumed;
        self.frame_in_pass = 0;
        Ok(())
    }
}

impl FrameSource for Y4mSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        let fps = self
            .header
            .fps
            .map_or_else(|| "no frame rate".to_owned(), |fps| format!("{fps:.3} fps"));
        let conversion = if self.format == self.header.format {
            String::new()
        } else {
            format!(" -> {}", self.format.pixel())
        };
        format!(
            "y4m {} {} {}{conversion}, {fps}{}",
            self.input.name(),
            self.header.format,
            self.header.colorspace,
            if self.looping { ", looping" } else { "" }
        )
    }

    fn native_fps(&self) -> Option<f64> {
        self.header.fps
    }

    fn fill(&mut self, _seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        if dst.len() != self.format.frame_bytes() {
            return Err(SourceError::FrameLength {
                format: self.format,
                expected: self.format.frame_bytes(),
                got: dst.len(),
            });
        }
        if self.read_frame(dst)? {
            return Ok(Filled::Frame { capture_ns: None });
        }
        // A pass that gave no frame at all would loop forever without one.
        if !self.looping || self.frame_in_pass == 0 {
            tracing::debug!(input = %self.input.name(), "y4m input ended");
            return Ok(Filled::End);
        }
        self.rewind()?;
        if self.read_frame(dst)? {
            Ok(Filled::Frame { capture_ns: None })
        } else {
            Ok(Filled::End)
        }
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "y4m {} sets the stream format ({}); it cannot be switched to {format}",
            self.input.name(),
            self.format
        )))
    }

    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "y4m {} has no test pattern to switch to {pattern}",
            self.input.name()
        )))
    }
}

fn open_file(path: &Path) -> Result<BufReader<File>, SourceError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| SourceError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Hands the stream to the decoder, which reads the header, and checks what it found.
fn start(
    input: &Y4mInput,
    reader: Box<dyn Read + Send>,
    consumed: &Arc<AtomicU64>,
) -> Result<(Header, Decoder), SourceError> {
    let stream: Box<dyn Read + Send> = Box::new(Counting {
        inner: reader,
        count: Arc::clone(consumed),
    });
    let decoder = match ::y4m::Decoder::new(stream) {
        Ok(decoder) => decoder,
        Err(::y4m::Error::UnknownColorspace) => {
            return Err(SourceError::Y4mColorspace {
                input: input.name(),
                colorspace: "(one the y4m crate does not know)".to_owned(),
            });
        }
        Err(source) => {
            return Err(SourceError::Y4mDecoder {
                input: input.name(),
                source,
            });
        }
    };
    let pixel = match decoder.get_colorspace() {
        ::y4m::Colorspace::C420
        | ::y4m::Colorspace::C420jpeg
        | ::y4m::Colorspace::C420paldv
        | ::y4m::Colorspace::C420mpeg2 => PixelFormat::I420,
        ::y4m::Colorspace::Cmono => PixelFormat::Gray8,
        other => {
            return Err(SourceError::Y4mColorspace {
                input: input.name(),
                colorspace: format!("{other:?}"),
            });
        }
    };
    let format_error = |source| SourceError::Y4mFormat {
        input: input.name(),
        source,
    };
    let dimension = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
    let format = FrameFormat::new(
        dimension(decoder.get_width()),
        dimension(decoder.get_height()),
        pixel,
    )
    .map_err(format_error)?;
    let rate = decoder.get_framerate();
    let fps = (rate.num > 0 && rate.den > 0).then(|| rate.num as f64 / rate.den as f64);
    // The crate keeps the X (extension) fields for us to read.
    let full_range = decoder
        .get_raw_params()
        .split(|&b| b == b' ')
        .any(|param| param.eq_ignore_ascii_case(b"XCOLORRANGE=FULL"));
    let header = Header {
        format,
        colorspace: format!("{:?}", decoder.get_colorspace()),
        fps,
        full_range,
    };
    Ok((header, decoder))
}

#[cfg(test)]
mod tests;

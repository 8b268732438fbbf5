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
mod tests {
    use super::*;
    use shm_frames::testing::TempDir;
    use std::io::Cursor;

    /// A Y4M clip written with the `y4m` crate's encoder, and its frames.
    fn clip(
        w: u32,
        h: u32,
        colorspace: ::y4m::Colorspace,
        count: usize,
    ) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mono = matches!(colorspace, ::y4m::Colorspace::Cmono);
        let luma = (w * h) as usize;
        let chroma = if mono { 0 } else { luma / 4 };
        let frames: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                (0..luma + 2 * chroma)
                    .map(|b| (b * 31 + i * 7) as u8)
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        {
            let mut encoder = ::y4m::encode(w as usize, h as usize, ::y4m::Ratio::new(30000, 1001))
                .with_colorspace(colorspace)
                .write_header(&mut out)
                .unwrap();
            for frame in &frames {
                let (y, rest) = frame.split_at(luma);
                let (u, v) = rest.split_at(chroma);
                encoder
                    .write_frame(&::y4m::Frame::new([y, u, v], None))
                    .unwrap();
            }
        }
        (out, frames)
    }

    fn stdin_source(bytes: Vec<u8>, pixel: Option<PixelFormat>) -> Result<Y4mSource, SourceError> {
        Y4mSource::from_reader(Y4mInput::Stdin, Cursor::new(bytes), pixel, false)
    }

    fn read_all(source: &mut Y4mSource, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut dst = vec![0; source.format().frame_bytes()];
        for seq in 1..=max as u64 {
            match source.fill(seq, &mut dst).unwrap() {
                Filled::Frame { .. } => out.push(dst.clone()),
                Filled::End => break,
            }
        }
        out
    }

    #[test]
    fn i420_frames_pass_through_bit_exact_then_end() {
        let (bytes, frames) = clip(16, 8, ::y4m::Colorspace::C420jpeg, 3);
        let mut source = stdin_source(bytes, None).unwrap();
        assert_eq!(
            source.format(),
            FrameFormat::new(16, 8, PixelFormat::I420).unwrap()
        );
        let fps = source.native_fps().unwrap();
        assert!((fps - 29.97).abs() < 0.01, "{fps}");
        assert_eq!(read_all(&mut source, 10), frames);
        let mut dst = vec![0; source.format().frame_bytes()];
        assert_eq!(source.fill(9, &mut dst).unwrap(), Filled::End);
    }

    #[test]
    fn mono_is_gray8() {
        let (bytes, frames) = clip(6, 3, ::y4m::Colorspace::Cmono, 2);
        let mut source = stdin_source(bytes, None).unwrap();
        assert_eq!(
            source.format(),
            FrameFormat::new(6, 3, PixelFormat::Gray8).unwrap()
        );
        assert_eq!(read_all(&mut source, 10), frames);
    }

    #[test]
    fn another_pixel_format_is_converted() {
        let (bytes, frames) = clip(8, 4, ::y4m::Colorspace::C420, 2);
        let mut source = stdin_source(bytes, Some(PixelFormat::Bgra)).unwrap();
        let file = FrameFormat::new(8, 4, PixelFormat::I420).unwrap();
        assert_eq!(source.file_format(), file);
        assert_eq!(source.format(), file.with_pixel(PixelFormat::Bgra).unwrap());
        let got = read_all(&mut source, 10);
        assert_eq!(got.len(), 2);
        let mut expected = vec![0; 8 * 4 * 4];
        frame_vocab::convert(file, &frames[1], PixelFormat::Bgra, &mut expected).unwrap();
        assert_eq!(got[1], expected);
        assert!(
            source.describe().contains("-> bgra"),
            "{}",
            source.describe()
        );
    }

    #[test]
    fn a_file_loops_from_the_start() {
        let (bytes, frames) = clip(4, 2, ::y4m::Colorspace::C420, 3);
        let dir = TempDir::new("y4m");
        let input = Y4mInput::File(dir.write("clip.y4m", &bytes));
        let mut source = Y4mSource::open(input.clone(), None, true).unwrap();
        let got = read_all(&mut source, 7);
        let expected: Vec<Vec<u8>> = frames.iter().cycle().take(7).cloned().collect();
        assert_eq!(got, expected);
        // Without --loop the same file ends.
        let mut once = Y4mSource::open(input, None, false).unwrap();
        assert_eq!(read_all(&mut once, 7), frames);
    }

    #[test]
    fn an_empty_clip_ends_even_when_looping() {
        let (bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 0);
        let dir = TempDir::new("y4m");
        let input = Y4mInput::File(dir.write("empty.y4m", &bytes));
        let mut source = Y4mSource::open(input, None, true).unwrap();
        assert!(read_all(&mut source, 3).is_empty());
    }

    #[test]
    fn looping_stdin_is_refused() {
        let err = Y4mSource::open(Y4mInput::Stdin, None, true).unwrap_err();
        assert!(matches!(err, SourceError::Unsupported(_)), "{err}");
    }

    #[test]
    fn unsupported_colour_spaces_are_named() {
        for cs in ["444", "422", "420p10", "mono12", "411"] {
            let bytes = format!("YUV4MPEG2 W4 H2 F25:1 C{cs}\nFRAME\n").into_bytes();
            let err = stdin_source(bytes, None).unwrap_err();
            match &err {
                SourceError::Y4mColorspace { colorspace, .. } if cs == "411" => {
                    assert!(colorspace.contains("does not know"), "{colorspace}")
                }
                SourceError::Y4mColorspace { colorspace, .. } => {
                    assert_eq!(colorspace, &format!("C{cs}"))
                }
                other => panic!("C{cs}: {other:?}"),
            }
            if cs != "411" {
                assert!(err.to_string().contains(&format!("C{cs}")), "{err}");
            }
        }
    }

    #[test]
    fn a_truncated_frame_is_an_error_naming_it() {
        let (mut bytes, _) = clip(8, 4, ::y4m::Colorspace::C420, 3);
        bytes.truncate(bytes.len() - 5);
        let mut source = stdin_source(bytes, None).unwrap();
        let mut dst = vec![0; source.format().frame_bytes()];
        assert!(matches!(source.fill(1, &mut dst), Ok(Filled::Frame { .. })));
        assert!(matches!(source.fill(2, &mut dst), Ok(Filled::Frame { .. })));
        let err = source.fill(3, &mut dst).unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::TruncatedY4m {
                    frame: 3,
                    got: 49,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("frame 3"), "{err}");
    }

    #[test]
    fn a_cut_frame_header_is_truncation_too() {
        let (mut bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 1);
        bytes.extend_from_slice(b"FRA");
        let mut source = stdin_source(bytes, None).unwrap();
        let mut dst = vec![0; source.format().frame_bytes()];
        assert!(matches!(source.fill(1, &mut dst), Ok(Filled::Frame { .. })));
        assert!(matches!(
            source.fill(2, &mut dst),
            Err(SourceError::TruncatedY4m {
                frame: 2,
                got: 3,
                ..
            })
        ));
    }

    #[test]
    fn bad_headers_are_errors() {
        let cases: [&[u8]; 4] = [
            b"",
            b"P6 4 4 255\n",
            b"YUV4MPEG2 W4 F25:1\n",
            b"YUV4MPEG2 W3 H3 C420\n",
        ];
        for bytes in cases {
            let err = stdin_source(bytes.to_vec(), None).unwrap_err();
            assert!(
                matches!(
                    err,
                    SourceError::Y4mDecoder { .. } | SourceError::Y4mFormat { .. }
                ),
                "{:?}: {err:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let err = Y4mSource::open(Y4mInput::File("/nonexistent/clip.y4m".into()), None, false)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/clip.y4m"), "{err}");
    }

    #[test]
    fn the_format_cannot_be_switched() {
        let (bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 1);
        let mut source = stdin_source(bytes, None).unwrap();
        let other = FrameFormat::new(8, 8, PixelFormat::Bgra).unwrap();
        assert!(matches!(
            source.set_format(other),
            Err(SourceError::Unsupported(_))
        ));
        assert!(matches!(
            source.set_pattern(PatternKind::Moving),
            Err(SourceError::Unsupported(_))
        ));
    }
}

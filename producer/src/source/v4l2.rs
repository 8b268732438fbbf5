//! The `v4l2:/dev/videoN` source (cargo feature `v4l2`): a real camera, through the `v4l`
//! crate with mmap streaming.
//!
//! It asks the driver for the stream size in YUYV, or in MJPEG if the camera offers no
//! YUYV, and keeps whatever size the driver chose (cameras offer a fixed list; scaling
//! every frame would cost more than the copy the slot saves). Without an explicit
//! `--format`, a YUYV camera streams `yuyv` untouched; otherwise frames are converted with
//! [`Converter`] (YUYV) or decoded with the `image` crate's JPEG decoder (MJPEG).
//! [`describe`](FrameSource::describe) says what the driver chose. The camera paces
//! itself; a frame's capture time is the driver's timestamp when it is CLOCK_MONOTONIC.

use std::path::{Path, PathBuf};
use std::time::Duration;

use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat, monotonic_ns};
use v4l::buffer::{Flags, Metadata, Type};
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use crate::source::{Filled, FrameSource, SourceError};
use frame_vocab::convert::Converter;

/// Buffers the driver cycles through.
const BUFFERS: u32 = 4;
/// How long to wait for one frame before calling the camera stuck.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Corrupt or short buffers tolerated in a row before giving up.
const MAX_BAD_BUFFERS: u32 = 30;

const YUYV: [u8; 4] = *b"YUYV";
const MJPG: [u8; 4] = *b"MJPG";

/// What the camera sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// Packed YUYV rows of `stride` bytes (the driver may pad rows).
    Yuyv { stride: usize },
    /// One JPEG image per buffer.
    Mjpeg,
}

/// Captures frames from a V4L2 camera.
pub struct V4l2Source {
    path: PathBuf,
    /// Declared before `device` so the stream stops before the device closes.
    stream: Stream<'static>,
    _device: Device,
    wire: Wire,
    /// The camera's frames as this source first sees them: YUYV, or RGB decoded from MJPEG.
    camera: FrameFormat,
    format: FrameFormat,
    fps: Option<f64>,
    description: String,
    converter: Converter,
    /// Tightly packed YUYV when the driver pads its rows.
    packed: Vec<u8>,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("path", &self.path)
            .field("wire", &self.wire)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl V4l2Source {
    /// Opens the camera at `path` and starts nothing yet (streaming starts on the first
    /// `fill`). `requested` gives the size to ask for; its pixel format is used if
    /// `pixel_explicit`, else a YUYV camera streams `yuyv` and an MJPEG one
    /// `requested.pixel()`.
    pub fn open(
        path: &Path,
        requested: FrameFormat,
        pixel_explicit: bool,
    ) -> Result<V4l2Source, SourceError> {
        let failed = |what: &'static str| {
            move |source| SourceError::V4l2 {
                path: path.to_owned(),
                what,
                source,
            }
        };
        let device = Device::with_path(path).map_err(failed("opening the camera"))?;
        let offered = device
            .enum_formats()
            .map_err(failed("listing the camera's formats"))?;
        let fourcc = if offered.iter().any(|d| d.fourcc.repr == YUYV) {
            YUYV
        } else if offered.iter().any(|d| d.fourcc.repr == MJPG) {
            MJPG
        } else {
            let names: Vec<String> = offered.iter().map(|d| d.fourcc.to_string()).collect();
            return Err(SourceError::V4l2Format {
                path: path.to_owned(),
                detail: format!(
                    "the camera offers neither YUYV nor MJPEG (it offers {})",
                    names.join(", ")
                ),
            });
        };
        let asked = Format::new(requested.width(), requested.height(), FourCC::new(&fourcc));
        let chosen = device
            .set_format(&asked)
            .map_err(failed("setting the capture format"))?;
        if chosen.fourcc.repr != fourcc {
            return Err(SourceError::V4l2Format {
                path: path.to_owned(),
                detail: format!(
                    "asked for {}, the driver chose {}",
                    asked.fourcc, chosen.fourcc
                ),
            });
        }
        let wire = if fourcc == YUYV {
            Wire::Yuyv {
                stride: chosen.stride as usize,
            }
        } else {
            Wire::Mjpeg
        };
        let camera_pixel = match wire {
            Wire::Yuyv { .. } => PixelFormat::Yuyv,
            Wire::Mjpeg => PixelFormat::Rgb24,
        };
        let unusable = |source| SourceError::V4l2Format {
            path: path.to_owned(),
            detail: format!(
                "the driver chose {}x{} {}, which framepipe cannot stream: {source}",
                chosen.width, chosen.height, chosen.fourcc
            ),
        };
        let camera =
            FrameFormat::new(chosen.width, chosen.height, camera_pixel).map_err(unusable)?;
        let pixel = match (pixel_explicit, wire) {
            (false, Wire::Yuyv { .. }) => PixelFormat::Yuyv,
            _ => requested.pixel(),
        };
        let format = camera.with_pixel(pixel).map_err(unusable)?;
        if let Wire::Yuyv { stride } = wire
            && stride < camera.stride() as usize
        {
            return Err(SourceError::V4l2Format {
                path: path.to_owned(),
                detail: format!("the driver reports rows of {stride} bytes, under one row"),
            });
        }
        let fps = device.params().ok().and_then(|params| {
            let interval = params.interval;
            (interval.numerator > 0 && interval.denominator > 0)
                .then(|| f64::from(interval.denominator) / f64::from(interval.numerator))
        });
        let mut stream = Stream::with_buffers(&device, Type::VideoCapture, BUFFERS)
            .map_err(failed("allocating capture buffers"))?;
        stream.set_timeout(FRAME_TIMEOUT);

        let fps_text = fps.map_or_else(|| "unknown fps".to_owned(), |fps| format!("{fps:.2} fps"));
        let description = format!(
            "v4l2 {}: driver chose {}x{} {} (asked {}x{}), {fps_text}, streaming {format}",
            path.display(),
            chosen.width,
            chosen.height,
            chosen.fourcc,
            requested.width(),
            requested.height(),
        );
        tracing::info!("{description}");
        Ok(V4l2Source {
            path: path.to_owned(),
            stream,
            _device: device,
            wire,
            camera,
            format,
            fps,
            description,
            converter: Converter::new(),
            packed: Vec::new(),
        })
    }
}

impl FrameSource for V4l2Source {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn native_fps(&self) -> Option<f64> {
        self.fps
    }

    fn paces_itself(&self) -> bool {
        true
    }

    fn fill(&mut self, _seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        let V4l2Source {
            path,
            stream,
            wire,
            camera,
            format,
            converter,
            packed,
            ..
        } = self;
        if dst.len() != format.frame_bytes() {
            return Err(SourceError::FrameLength {
                format: *format,
                expected: format.frame_bytes(),
                got: dst.len(),
            });
        }
        let mut last_problem = String::new();
        for _ in 0..MAX_BAD_BUFFERS {
            let (buffer, meta) = stream.next().map_err(|source| SourceError::V4l2 {
                path: path.clone(),
                what: "capturing a frame",
                source,
            })?;
            let data = &buffer[..(meta.bytesused as usize).min(buffer.len())];
            if meta.flags.contains(Flags::ERROR) {
                last_problem = format!("buffer {} flagged as corrupt", meta.sequence);
                tracing::debug!(path = %path.display(), "{last_problem}");
                continue;
            }
            let capture_ns = capture_ns(meta);
            match *wire {
                Wire::Yuyv { stride } => {
                    let Some(frame) = tight_yuyv(data, stride, *camera, packed) else {
                        last_problem = format!("short buffer of {} bytes", data.len());
                        tracing::debug!(path = %path.display(), "{last_problem}");
                        continue;
                    };
                    converter.convert(*camera, frame, format.pixel(), dst)?;
                }
                Wire::Mjpeg => {
                    let image =
                        match image::load_from_memory_with_format(data, image::ImageFormat::Jpeg) {
                            Ok(image) => image.into_rgb8(),
                            Err(e) => {
                                last_problem = format!("undecodable MJPEG frame: {e}");
                                tracing::debug!(path = %path.display(), "{last_problem}");
                                continue;
                            }
                        };
                    if image.dimensions() != (camera.width(), camera.height()) {
                        last_problem =
                            format!("MJPEG frame of {:?}, not {camera}", image.dimensions());
                        tracing::debug!(path = %path.display(), "{last_problem}");
                        continue;
                    }
                    converter.convert(*camera, image.as_raw(), format.pixel(), dst)?;
                }
            }
            return Ok(Filled::Frame {
                capture_ns: Some(capture_ns),
            });
        }
        Err(SourceError::V4l2Frame {
            path: path.clone(),
            detail: format!("{MAX_BAD_BUFFERS} bad buffers in a row (last: {last_problem})"),
        })
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "camera {} streams {} as the driver set it; it cannot be switched to {format} \
             (restart the producer with another --size/--format)",
            self.path.display(),
            self.format
        )))
    }

    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "camera {} has no test pattern to switch to {pattern}",
            self.path.display()
        )))
    }
}

/// The frame as tightly packed YUYV: `data` itself when rows are not padded, else the rows
/// copied into `packed`. `None` if the buffer is too short.
fn tight_yuyv<'a>(
    data: &'a [u8],
    stride: usize,
    camera: FrameFormat,
    packed: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    let row = camera.stride() as usize;
    let rows = camera.height() as usize;
    if stride == row {
        return data.get(..camera.frame_bytes());
    }
    let needed = stride.checked_mul(rows - 1)?.checked_add(row)?;
    if data.len() < needed {
        return None;
    }
    packed.resize(camera.frame_bytes(), 0);
    for (dst, src) in packed.chunks_exact_mut(row).zip(data.chunks(stride)) {
        dst.copy_from_slice(src.get(..row)?);
    }
    Some(packed)
}

/// The buffer's timestamp in CLOCK_MONOTONIC nanoseconds, or now if the driver stamps
/// another clock.
fn capture_ns(meta: &Metadata) -> u64 {
    let kind = meta.flags.bits() & Flags::TIMESTAMP_MASK.bits();
    let stamp = &meta.timestamp;
    let (Ok(sec), Ok(usec)) = (u64::try_from(stamp.sec), u64::try_from(stamp.usec)) else {
        return monotonic_ns();
    };
    if kind == Flags::TIMESTAMP_MONOTONIC.bits() && (sec, usec) != (0, 0) {
        sec.saturating_mul(1_000_000_000)
            .saturating_add(usec.saturating_mul(1_000))
    } else {
        monotonic_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let path = Path::new("/dev/framepipe-no-such-video9");
        let format = FrameFormat::new(640, 480, PixelFormat::Bgra).unwrap();
        let err = V4l2Source::open(path, format, false).unwrap_err();
        assert!(matches!(err, SourceError::V4l2 { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("/dev/framepipe-no-such-video9"), "{text}");
        assert!(text.contains("opening the camera"), "{text}");
    }

    #[test]
    fn padded_rows_are_packed() {
        let camera = FrameFormat::new(2, 3, PixelFormat::Yuyv).unwrap();
        let data = [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0, 9, 10, 11, 12];
        let mut packed = Vec::new();
        let frame = tight_yuyv(&data, 6, camera, &mut packed).unwrap();
        assert_eq!(frame, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert!(tight_yuyv(&data[..15], 6, camera, &mut packed).is_none());
        assert_eq!(
            tight_yuyv(&data[..12], 4, camera, &mut packed).unwrap(),
            &data[..12]
        );
    }

    #[test]
    fn monotonic_timestamps_are_used_and_others_replaced() {
        let mut meta = Metadata {
            flags: Flags::TIMESTAMP_MONOTONIC,
            ..Metadata::default()
        };
        meta.timestamp = v4l::Timestamp::new(12, 345_678);
        assert_eq!(capture_ns(&meta), 12_345_678_000);
        meta.flags = Flags::TIMESTAMP_COPY;
        let before = monotonic_ns();
        assert!(capture_ns(&meta) >= before);
    }
}

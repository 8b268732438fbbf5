//! Y4M recording: the frame rate and chroma layout a recording is written with, and a thin
//! [`Y4mWriter`] over the `y4m` crate's encoder (4:2:0 as `C420jpeg` with ffmpeg's
//! `XYSCSS=420JPEG` tag, luma only as `Cmono`).
//!
//! One thing the crate cannot write is the interlacing field (`Ip`, which ffmpeg's muxer
//! writes): without it ffprobe reports the field order as unknown instead of progressive.
//! Nothing framepipe reads depends on it.

use std::fmt;
use std::io::{self, Write};

use frame_vocab::{FrameFormat, PixelFormat};
/// A frame rate as the fraction Y4M's `F` field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Frames...
    pub num: u32,
    /// ...per this many seconds.
    pub den: u32,
}

impl Rate {
    /// The rate written when nothing better is known (ffmpeg's default for raw input).
    pub const DEFAULT: Rate = Rate { num: 25, den: 1 };

    /// `fps` as a fraction to 0.001 fps, `None` unless `0 < fps < 4e6`.
    pub fn from_fps(fps: f64) -> Option<Rate> {
        if !(fps.is_finite() && fps > 0.0 && fps < 4e6) {
            return None;
        }
        let num = (fps * 1000.0).round() as u64;
        if num == 0 {
            return None;
        }
        let divisor = gcd(num, 1000);
        Some(Rate {
            num: u32::try_from(num / divisor).ok()?,
            den: u32::try_from(1000 / divisor).ok()?,
        })
    }

    /// The rate of frames `interval_ns` apart, snapped to a whole number of frames per
    /// second when within 1.5% of one (pacing jitter), else to 0.01 fps.
    pub fn from_interval_ns(interval_ns: u64) -> Option<Rate> {
        if interval_ns == 0 {
            return None;
        }
        let fps = 1e9 / interval_ns as f64;
        let whole = fps.round();
        if whole >= 1.0 && (fps - whole).abs() <= 0.015 * fps {
            return Rate::from_fps(whole);
        }
        Rate::from_fps((fps * 100.0).round() / 100.0)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.num, self.den)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The chroma layouts this writer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// Planar 4:2:0 (`i420`), chroma sited at the centre: `C420jpeg`.
    C420jpeg,
    /// Luma only (`gray8`): `Cmono`.
    Mono,
}

impl Chroma {
    /// The chroma layout for frames of `pixel` once converted: `gray8` stays luma only,
    /// everything else is recorded as 4:2:0.
    pub fn for_pixel(pixel: PixelFormat) -> Chroma {
        match pixel {
            PixelFormat::Gray8 => Chroma::Mono,
            _ => Chroma::C420jpeg,
        }
    }

    /// The pixel format of the planes a Y4M frame of this layout holds.
    pub fn pixel(self) -> PixelFormat {
        match self {
            Chroma::C420jpeg => PixelFormat::I420,
            Chroma::Mono => PixelFormat::Gray8,
        }
    }
}

/// Writes a Y4M stream of one format to `out` through the `y4m` crate.
pub struct Y4mWriter<W: Write> {
    encoder: y4m::Encoder<W>,
    format: FrameFormat,
    rate: Rate,
    frames: u64,
}

impl<W: Write> fmt::Debug for Y4mWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Y4mWriter")
            .field("format", &self.format)
            .field("rate", &self.rate)
            .field("frames", &self.frames)
            .finish()
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the header for frames of `format` (which must be `i420` or `gray8`) at `rate`.
    pub fn new(out: W, format: FrameFormat, rate: Rate) -> io::Result<Y4mWriter<W>> {
        let (colorspace, jpeg_siting) = match format.pixel() {
            PixelFormat::I420 => (y4m::Colorspace::C420jpeg, true),
            PixelFormat::Gray8 => (y4m::Colorspace::Cmono, false),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Y4M carries i420 or gray8 planes, not {other}"),
                ));
            }
        };
        let ratio = y4m::Ratio::new(rate.num as usize, rate.den as usize);
        let mut builder = y4m::encode(format.width() as usize, format.height() as usize, ratio)
            .with_colorspace(colorspace);
        if jpeg_siting {
            let siting =
                y4m::VendorExtensionString::new(b"YSCSS=420JPEG".to_vec()).map_err(into_io)?;
            builder = builder.append_vendor_extension(siting);
        }
        let encoder = builder.write_header(out).map_err(into_io)?;
        Ok(Y4mWriter {
            encoder,
            format,
            rate,
            frames: 0,
        })
    }

    /// Writes one frame: exactly one frame of the header's format, planes back to back.
    pub fn write_frame(&mut self, planes: &[u8]) -> io::Result<()> {
        if planes.len() != self.format.frame_bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {} frame has {} bytes, got {}",
                    self.format,
                    self.format.frame_bytes(),
                    planes.len()
                ),
            ));
        }
        let luma = self.format.width() as usize * self.format.height() as usize;
        let (y, chroma) = planes.split_at(luma);
        let (u, v) = chroma.split_at(chroma.len() / 2);
        self.encoder
            .write_frame(&y4m::Frame::new([y, u, v], None))
            .map_err(into_io)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// The crate's error as the `io::Error` it usually wraps (so a closed pipe stays
/// `BrokenPipe`).
fn into_io(error: y4m::Error) -> io::Error {
    match error {
        y4m::Error::IoError(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(format: FrameFormat, seed: u8) -> Vec<u8> {
        (0..format.frame_bytes())
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn writes_the_header_ffmpeg_reads() {
        let format = FrameFormat::new(4, 2, PixelFormat::I420).unwrap();
        let mut bytes = Vec::new();
        let mut writer = Y4mWriter::new(&mut bytes, format, Rate::DEFAULT).unwrap();
        writer.write_frame(&[7; 12]).unwrap();
        let header = b"YUV4MPEG2 W4 H2 F25:1 XYSCSS=420JPEG C420jpeg\n";
        assert_eq!(&bytes[..header.len()], header);
        assert_eq!(&bytes[header.len()..header.len() + 6], b"FRAME\n");
        assert_eq!(&bytes[header.len() + 6..], &[7; 12]);
    }

    #[test]
    fn round_trips_through_the_y4m_crate() {
        for (pixel, colorspace) in [
            (PixelFormat::I420, y4m::Colorspace::C420jpeg),
            (PixelFormat::Gray8, y4m::Colorspace::Cmono),
        ] {
            let format = FrameFormat::new(64, 48, pixel).unwrap();
            let frames: Vec<_> = (0..3).map(|seed| frame(format, seed)).collect();
            let rate = Rate::from_fps(30000.0 / 1001.0).unwrap();
            let mut bytes = Vec::new();
            let mut writer = Y4mWriter::new(&mut bytes, format, rate).unwrap();
            for f in &frames {
                writer.write_frame(f).unwrap();
            }
            assert_eq!(writer.frames(), 3);

            let mut decoder = y4m::Decoder::new(&bytes[..]).unwrap();
            assert_eq!((decoder.get_width(), decoder.get_height()), (64, 48));
            assert_eq!(
                format!("{:?}", decoder.get_colorspace()),
                format!("{colorspace:?}")
            );
            let f = decoder.get_framerate();
            assert_eq!((f.num, f.den), (2997, 100));
            for want in &frames {
                let got = decoder.read_frame().unwrap();
                let planes = [got.get_y_plane(), got.get_u_plane(), got.get_v_plane()].concat();
                assert_eq!(&planes, want);
            }
            assert!(decoder.read_frame().is_err(), "no fourth frame");
        }
    }

    #[test]
    fn refuses_wrong_sizes_and_formats() {
        let format = FrameFormat::new(4, 2, PixelFormat::I420).unwrap();
        let mut writer = Y4mWriter::new(Vec::new(), format, Rate::DEFAULT).unwrap();
        assert!(writer.write_frame(&[0; 11]).is_err());
        assert_eq!(writer.frames(), 0);
        let bgra = FrameFormat::new(4, 2, PixelFormat::Bgra).unwrap();
        assert!(Y4mWriter::new(Vec::new(), bgra, Rate::DEFAULT).is_err());
    }

    #[test]
    fn rates_snap_to_whole_fps() {
        let rate = |n, d| Some(Rate { num: n, den: d });
        assert_eq!(Rate::from_interval_ns(40_000_000), rate(25, 1));
        assert_eq!(Rate::from_interval_ns(40_200_000), rate(25, 1));
        assert_eq!(Rate::from_interval_ns(16_666_667), rate(60, 1));
        assert_eq!(Rate::from_interval_ns(333_333), rate(3000, 1));
        assert_eq!(Rate::from_interval_ns(80_000_000), rate(25, 2));
        assert_eq!(Rate::from_interval_ns(0), None);
        assert_eq!(Rate::from_fps(29.97), rate(2997, 100));
        assert_eq!(Rate::from_fps(0.5), rate(1, 2));
        assert_eq!(Rate::from_fps(0.0), None);
        assert_eq!(Rate::from_fps(f64::NAN), None);
        assert_eq!(Rate::from_fps(-3.0), None);
        assert_eq!(Rate::DEFAULT.to_string(), "25:1");
    }
}

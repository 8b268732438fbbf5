//! Frame formats: pixel layouts and the one function that sizes a frame.
//!
//! Every stride and frame size in framepipe comes from [`FrameFormat`], computed with
//! checked arithmetic, so a hostile width or height can never overflow a size.

use std::fmt;
use std::str::FromStr;

/// Largest width or height accepted, in pixels (16K; larger is a garbage value).
pub const MAX_DIMENSION: u32 = 16_384;

/// How the bytes of one frame encode its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PixelFormat {
    /// 4 bytes per pixel: B, G, R, X. The same bytes as minifb's `0RGB` u32 on
    /// little-endian, ffmpeg's `bgr0`, GStreamer's `BGRx`, V4L2's `XR24`.
    #[default]
    Bgra,
    /// 3 bytes per pixel: R, G, B (ffmpeg `rgb24`).
    Rgb24,
    /// 1 byte per pixel of luma (ffmpeg `gray`).
    Gray8,
    /// Packed 4:2:2, 2 bytes per pixel: Y0 U Y1 V (what UVC webcams send; ffmpeg `yuyv422`).
    Yuyv,
    /// Planar 4:2:0: a Y plane, then U and V planes of half width and height (ffmpeg
    /// `yuv420p`, what Y4M carries).
    I420,
}

impl PixelFormat {
    /// Every pixel format, in wire-code order.
    pub const ALL: [PixelFormat; 5] = [
        PixelFormat::Bgra,
        PixelFormat::Rgb24,
        PixelFormat::Gray8,
        PixelFormat::Yuyv,
        PixelFormat::I420,
    ];

    /// The stable numeric code used in shared memory and on the wire (never 0).
    pub const fn code(self) -> u32 {
        match self {
            PixelFormat::Bgra => 1,
            PixelFormat::Rgb24 => 2,
            PixelFormat::Gray8 => 3,
            PixelFormat::Yuyv => 4,
            PixelFormat::I420 => 5,
        }
    }

    /// Decodes a numeric code; `None` for anything unknown.
    pub const fn from_code(code: u32) -> Option<PixelFormat> {
        match code {
            1 => Some(PixelFormat::Bgra),
            2 => Some(PixelFormat::Rgb24),
            3 => Some(PixelFormat::Gray8),
            4 => Some(PixelFormat::Yuyv),
            5 => Some(PixelFormat::I420),
            _ => None,
        }
    }

    /// The name used on command lines (`bgra`, `rgb24`, `gray8`, `yuyv`, `i420`).
    pub const fn name(self) -> &'static str {
        match self {
            PixelFormat::Bgra => "bgra",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Gray8 => "gray8",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::I420 => "i420",
        }
    }

    /// The matching ffmpeg `-pix_fmt` name.
    pub const fn ffmpeg_name(self) -> &'static str {
        match self {
            PixelFormat::Bgra => "bgr0",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Gray8 => "gray",
            PixelFormat::Yuyv => "yuyv422",
            PixelFormat::I420 => "yuv420p",
        }
    }

    /// Bytes per row of the first (or only) plane for `width` pixels, if it fits in u32.
    fn stride(self, width: u32) -> Option<u32> {
        match self {
            PixelFormat::Bgra => width.checked_mul(4),
            PixelFormat::Rgb24 => width.checked_mul(3),
            PixelFormat::Gray8 | PixelFormat::I420 => Some(width),
            PixelFormat::Yuyv => width.checked_mul(2),
        }
    }

    /// Whether width (and for 4:2:0 height) must be even.
    const fn needs_even(self) -> (bool, bool) {
        match self {
            PixelFormat::Yuyv => (true, false),
            PixelFormat::I420 => (true, true),
            _ => (false, false),
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pixel format name that is not one of framepipe's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pixel format {0:?} (expected bgra, rgb24, gray8, yuyv or i420)")]
pub struct UnknownPixelFormat(pub String);

impl FromStr for PixelFormat {
    type Err = UnknownPixelFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PixelFormat::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPixelFormat(s.to_owned()))
    }
}

/// Why a width, height and pixel format do not make a usable frame format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Width or height is zero.
    #[error("frame size {width}x{height} has a zero dimension")]
    Zero { width: u32, height: u32 },
    /// Width or height is above [`MAX_DIMENSION`].
    #[error("frame size {width}x{height} exceeds the maximum of {max}x{max}", max = MAX_DIMENSION)]
    TooLarge { width: u32, height: u32 },
    /// The pixel format subsamples chroma and the size is odd.
    #[error("{pixel} needs an even {axis}, got {value}")]
    Odd {
        pixel: PixelFormat,
        axis: &'static str,
        value: u32,
    },
    /// The frame's byte size does not fit the address space.
    #[error("a {width}x{height} {pixel} frame overflows the address space")]
    Overflow {
        width: u32,
        height: u32,
        pixel: PixelFormat,
    },
}

/// A validated frame format: size and pixel layout. Frames are tightly packed (stride =
/// bytes of the row's pixels, planes back to back), as ffmpeg's rawvideo and Y4M are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    width: u32,
    height: u32,
    pixel: PixelFormat,
}

impl FrameFormat {
    /// Validates a width, height and pixel format.
    pub fn new(width: u32, height: u32, pixel: PixelFormat) -> Result<FrameFormat, FormatError> {
        if width == 0 || height == 0 {
            return Err(FormatError::Zero { width, height });
        }
        if width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(FormatError::TooLarge { width, height });
        }
        let (even_w, even_h) = pixel.needs_even();
        if even_w && width % 2 != 0 {
            return Err(FormatError::Odd {
                pixel,
                axis: "width",
                value: width,
            });
        }
        if even_h && height % 2 != 0 {
            return Err(FormatError::Odd {
                pixel,
                axis: "height",
                value: height,
            });
        }
        let format = FrameFormat {
            width,
            height,
            pixel,
        };
        match format.checked_frame_bytes() {
            Some(_) => Ok(format),
            None => Err(FormatError::Overflow {
                width,
                height,
                pixel,
            }),
        }
    }

    /// Width in pixels.
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// The pixel format.
    pub const fn pixel(&self) -> PixelFormat {
        self.pixel
    }

    /// Bytes per row of the first (or only) plane.
    pub fn stride(&self) -> u32 {
        // Validated in `new`: width <= MAX_DIMENSION, so 4 * width fits.
        self.pixel.stride(self.width).unwrap_or(u32::MAX)
    }

    /// Bytes of one whole frame (all planes).
    pub fn frame_bytes(&self) -> usize {
        // Validated in `new`.
        self.checked_frame_bytes().unwrap_or(usize::MAX)
    }

    /// The same size in another pixel format, if that format accepts it.
    pub fn with_pixel(&self, pixel: PixelFormat) -> Result<FrameFormat, FormatError> {
        FrameFormat::new(self.width, self.height, pixel)
    }

    fn checked_frame_bytes(&self) -> Option<usize> {
        let stride = usize::try_from(self.pixel.stride(self.width)?).ok()?;
        let height = usize::try_from(self.height).ok()?;
        let luma = stride.checked_mul(height)?;
        match self.pixel {
            PixelFormat::I420 => {
                let chroma = (stride / 2).checked_mul(height / 2)?;
                luma.checked_add(chroma.checked_mul(2)?)
            }
            _ => Some(luma),
        }
    }
}

impl fmt::Display for FrameFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.pixel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_ffmpeg() {
        let f = |w, h, p| FrameFormat::new(w, h, p).unwrap();
        assert_eq!(
            f(1920, 1080, PixelFormat::Bgra).frame_bytes(),
            1920 * 1080 * 4
        );
        assert_eq!(f(1920, 1080, PixelFormat::Bgra).stride(), 7680);
        assert_eq!(f(641, 3, PixelFormat::Rgb24).frame_bytes(), 641 * 3 * 3);
        assert_eq!(f(7, 5, PixelFormat::Gray8).frame_bytes(), 35);
        assert_eq!(f(640, 481, PixelFormat::Yuyv).frame_bytes(), 640 * 481 * 2);
        assert_eq!(
            f(320, 240, PixelFormat::I420).frame_bytes(),
            320 * 240 * 3 / 2
        );
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(matches!(
            FrameFormat::new(0, 10, PixelFormat::Bgra),
            Err(FormatError::Zero { .. })
        ));
        assert!(matches!(
            FrameFormat::new(u32::MAX, u32::MAX, PixelFormat::Bgra),
            Err(FormatError::TooLarge { .. })
        ));
        assert!(matches!(
            FrameFormat::new(3, 2, PixelFormat::I420),
            Err(FormatError::Odd { .. })
        ));
        assert!(matches!(
            FrameFormat::new(4, 3, PixelFormat::I420),
            Err(FormatError::Odd { .. })
        ));
        assert!(FrameFormat::new(4, 3, PixelFormat::Yuyv).is_ok());
        assert!(FrameFormat::new(MAX_DIMENSION, MAX_DIMENSION, PixelFormat::Bgra).is_ok());
    }

    #[test]
    fn pixel_names_and_codes_round_trip() {
        for p in PixelFormat::ALL {
            assert_eq!(p.name().parse::<PixelFormat>(), Ok(p));
            assert_eq!(PixelFormat::from_code(p.code()), Some(p));
        }
        assert_eq!(PixelFormat::from_code(0), None);
        assert!("nv12".parse::<PixelFormat>().is_err());
    }
}

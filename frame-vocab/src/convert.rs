//! Pixel conversions between any two of framepipe's pixel formats, through the `yuv` crate.
//!
//! YUV (`yuyv`, `i420`) is BT.601 limited range, as ffmpeg and UVC cameras use by default;
//! `gray8` is full-range luma (ffmpeg's `gray`), so gray ↔ RGB keeps black at 0 and white
//! at 255. Lossless pairs: `bgra` ↔ `rgb24` (the X byte is written as 255), `gray8` → any RGB
//! → `gray8`, `i420` → `yuyv` → `i420`. Everything else rounds (and 4:2:x subsamples chroma).
//!
//! Pairs the `yuv` crate has no direct function for (gray ↔ YUV) go through a BGRA scratch
//! frame that a [`Converter`] keeps between calls, so a stream converts without allocating
//! per frame.

use crate::format::{FormatError, FrameFormat, PixelFormat};
use yuv::{
    BufferStoreMut, YuvConversionMode, YuvGrayImage, YuvPackedImage, YuvPackedImageMut,
    YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

/// Why a frame could not be converted to another pixel format.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The frame size does not fit the target pixel format (e.g. an odd width for `i420`).
    #[error("cannot convert a {from} frame to {to}")]
    Format {
        from: FrameFormat,
        to: PixelFormat,
        #[source]
        source: FormatError,
    },
    /// The source slice is not exactly one frame of its format.
    #[error("source of a {format} conversion holds {got} bytes, expected {expected}")]
    SourceLength {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The destination slice is not exactly one frame of the target format.
    #[error("destination of a {format} conversion holds {got} bytes, expected {expected}")]
    DestinationLength {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The `yuv` crate refused the conversion.
    #[error("converting a {from} frame to {to} failed")]
    Yuv {
        from: FrameFormat,
        to: PixelFormat,
        #[source]
        source: yuv::YuvError,
    },
}

/// The matrix of every YUV conversion (BT.601, as DESIGN.md says).
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;
/// The range of YUV formats: limited ("TV", Y in 16..=235).
const YUV_RANGE: YuvRange = YuvRange::Limited;
/// The range of `gray8`: full (0..=255), as ffmpeg's `gray` is.
const GRAY_RANGE: YuvRange = YuvRange::Full;
/// The `yuv` crate's accuracy mode for RGB → YUV.
const MODE: YuvConversionMode = YuvConversionMode::Balanced;

/// Converts frames between pixel formats, keeping its scratch buffers between calls.
#[derive(Debug, Default)]
pub struct Converter {
    /// A BGRA frame, for pairs converted in two steps.
    bgra: Vec<u8>,
    /// A planar 4:2:2 frame, for RGB → YUYV (the `yuv` crate packs YUYV from planar).
    planar: Vec<u8>,
}

impl Converter {
    /// A converter with empty scratch buffers (they grow on first use).
    pub fn new() -> Converter {
        Converter::default()
    }

    /// Converts `src`, one frame of `src_format`, into `dst`, one frame of the same size in
    /// `dst_pixel`. Both slices must be exactly one frame long. The same format is a copy.
    pub fn convert(
        &mut self,
        src_format: FrameFormat,
        src: &[u8],
        dst_pixel: PixelFormat,
        dst: &mut [u8],
    ) -> Result<(), ConvertError> {
        let dst_format = same_size(src_format, dst_pixel)?;
        if src.len() != src_format.frame_bytes() {
            return Err(ConvertError::SourceLength {
                format: src_format,
                expected: src_format.frame_bytes(),
                got: src.len(),
            });
        }
        if dst.len() != dst_format.frame_bytes() {
            return Err(ConvertError::DestinationLength {
                format: dst_format,
                expected: dst_format.frame_bytes(),
                got: dst.len(),
            });
        }
        self.convert_checked(src_format, src, dst_format, dst)
    }

    /// The conversion proper; lengths are already checked.
    fn convert_checked(
        &mut self,
        from: FrameFormat,
        src: &[u8],
        to: FrameFormat,
        dst: &mut [u8],
    ) -> Result<(), ConvertError> {
        use PixelFormat::{Bgra, Gray8, I420, Rgb24, Yuyv};

        let (w, h) = (from.width(), from.height());
        let result = match (from.pixel(), to.pixel()) {
            (Bgra, Bgra) | (Rgb24, Rgb24) | (Gray8, Gray8) | (Yuyv, Yuyv) | (I420, I420) => {
                dst.copy_from_slice(src);
                Ok(())
            }
            (Bgra, Rgb24) => yuv::bgra_to_rgb(src, w * 4, dst, w * 3, w, h),
            (Rgb24, Bgra) => yuv::rgb_to_bgra(src, w * 3, dst, w * 4, w, h),
            (Bgra, Gray8) => {
                luma(src, 4, [2, 1, 0], dst);
                Ok(())
            }
            (Rgb24, Gray8) => {
                luma(src, 3, [0, 1, 2], dst);
                Ok(())
            }
            (Gray8, Bgra) => yuv::yuv400_to_bgra(&gray(src, w, h), dst, w * 4, GRAY_RANGE, MATRIX),
            (Gray8, Rgb24) => yuv::yuv400_to_rgb(&gray(src, w, h), dst, w * 3, GRAY_RANGE, MATRIX),
            (Bgra, I420) => yuv::bgra_to_yuv420(
                &mut i420_mut(dst, w, h),
                src,
                w * 4,
                YUV_RANGE,
                MATRIX,
                MODE,
            ),
            (Rgb24, I420) => yuv::rgb_to_yuv420(
                &mut i420_mut(dst, w, h),
                src,
                w * 3,
                YUV_RANGE,
                MATRIX,
                MODE,
            ),
            (I420, Bgra) => yuv::yuv420_to_bgra(&i420(src, w, h), dst, w * 4, YUV_RANGE, MATRIX),
            (I420, Rgb24) => yuv::yuv420_to_rgb(&i420(src, w, h), dst, w * 3, YUV_RANGE, MATRIX),
            (Yuyv, Bgra) => yuv::yuyv422_to_bgra(&yuyv(src, w, h), dst, w * 4, YUV_RANGE, MATRIX),
            (Yuyv, Rgb24) => yuv::yuyv422_to_rgb(&yuyv(src, w, h), dst, w * 3, YUV_RANGE, MATRIX),
            (Yuyv, I420) => yuv::yuyv422_to_yuv420(&mut i420_mut(dst, w, h), &yuyv(src, w, h)),
            (I420, Yuyv) => yuv::yuv420_to_yuyv422(&mut yuyv_mut(dst, w, h), &i420(src, w, h)),
            (Bgra | Rgb24, Yuyv) => {
                // The `yuv` crate packs YUYV from planar 4:2:2.
                self.planar.resize(yuv422_bytes(w, h), 0);
                let mut image = yuv422_mut(&mut self.planar, w, h);
                if from.pixel() == Bgra {
                    yuv::bgra_to_yuv422(&mut image, src, w * 4, YUV_RANGE, MATRIX, MODE)
                } else {
                    yuv::rgb_to_yuv422(&mut image, src, w * 3, YUV_RANGE, MATRIX, MODE)
                }
                .and_then(|()| {
                    yuv::yuv422_to_yuyv422(&mut yuyv_mut(dst, w, h), &yuv422(&self.planar, w, h))
                })
            }
            // Gray ↔ YUV: the `yuv` crate has no direct function (and the ranges differ).
            (Gray8, Yuyv | I420) | (Yuyv | I420, Gray8) => {
                return self.convert_through_bgra(from, src, to, dst);
            }
        };
        result.map_err(|source| ConvertError::Yuv {
            from,
            to: to.pixel(),
            source,
        })
    }

    /// Converts in two steps through the BGRA scratch frame. Only for rare pairs (a gray
    /// stream shown as YUV or back).
    fn convert_through_bgra(
        &mut self,
        from: FrameFormat,
        src: &[u8],
        to: FrameFormat,
        dst: &mut [u8],
    ) -> Result<(), ConvertError> {
        let bgra_format = same_size(from, PixelFormat::Bgra)?;
        let mut scratch = std::mem::take(&mut self.bgra);
        scratch.resize(bgra_format.frame_bytes(), 0);
        let result = self
            .convert_checked(from, src, bgra_format, &mut scratch)
            .and_then(|()| self.convert_checked(bgra_format, &scratch, to, dst));
        self.bgra = scratch;
        result
    }
}

/// Converts one frame; see [`Converter::convert`]. Allocates scratch space for the pairs
/// that need it: convert a stream with a [`Converter`] instead.
pub fn convert(
    src_format: FrameFormat,
    src: &[u8],
    dst_pixel: PixelFormat,
    dst: &mut [u8],
) -> Result<(), ConvertError> {
    Converter::new().convert(src_format, src, dst_pixel, dst)
}

/// BT.601 full-range luma of packed RGB pixels (`bytes_per_pixel`, with R, G, B at the
/// `rgb` offsets). A plain loop on purpose: the `yuv` crate's fixed-point `*_to_yuv400`
/// is off by one on some greys (1 → 0, 198 → 199), so gray8 → RGB → gray8 would not
/// round-trip; these weights sum to exactly 1 (65536), so a grey maps to itself.
fn luma(src: &[u8], bytes_per_pixel: usize, rgb: [usize; 3], dst: &mut [u8]) {
    const KR: u32 = 19_595; // 0.299 * 65536
    const KG: u32 = 38_470; // 0.587 * 65536
    const KB: u32 = 7_471; // 0.114 * 65536
    for (pixel, y) in src.chunks_exact(bytes_per_pixel).zip(dst.iter_mut()) {
        let sum = KR * u32::from(pixel[rgb[0]])
            + KG * u32::from(pixel[rgb[1]])
            + KB * u32::from(pixel[rgb[2]])
            + (1 << 15);
        *y = (sum >> 16) as u8;
    }
}

/// Bytes of a planar 4:2:2 frame (the `yuv` crate's intermediate for YUYV).
fn yuv422_bytes(w: u32, h: u32) -> usize {
    let (w, h) = (w as usize, h as usize);
    w * h + 2 * (w / 2) * h
}

fn gray(buf: &[u8], w: u32, h: u32) -> YuvGrayImage<'_, u8> {
    YuvGrayImage {
        y_plane: buf,
        y_stride: w,
        width: w,
        height: h,
    }
}

fn yuyv(buf: &[u8], w: u32, h: u32) -> YuvPackedImage<'_, u8> {
    YuvPackedImage {
        yuy: buf,
        yuy_stride: w * 2,
        width: w,
        height: h,
    }
}

fn yuyv_mut(buf: &mut [u8], w: u32, h: u32) -> YuvPackedImageMut<'_, u8> {
    YuvPackedImageMut {
        yuy: BufferStoreMut::Borrowed(buf),
        yuy_stride: w * 2,
        width: w,
        height: h,
    }
}

/// Splits a tightly packed planar frame of `chroma_w` x `chroma_h` chroma planes.
fn split3(buf: &[u8], luma: usize, chroma: usize) -> (&[u8], &[u8], &[u8]) {
    let (y, rest) = buf.split_at(luma.min(buf.len()));
    let (u, v) = rest.split_at(chroma.min(rest.len()));
    (y, u, v)
}

fn split3_mut(buf: &mut [u8], luma: usize, chroma: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let luma = luma.min(buf.len());
    let (y, rest) = buf.split_at_mut(luma);
    let chroma = chroma.min(rest.len());
    let (u, v) = rest.split_at_mut(chroma);
    (y, u, v)
}

/// A planar image view with chroma planes of `cw` x `ch`.
fn planar(buf: &[u8], w: u32, h: u32, cw: u32, ch: u32) -> YuvPlanarImage<'_, u8> {
    let (y, u, v) = split3(buf, w as usize * h as usize, cw as usize * ch as usize);
    YuvPlanarImage {
        y_plane: y,
        y_stride: w,
        u_plane: u,
        u_stride: cw,
        v_plane: v,
        v_stride: cw,
        width: w,
        height: h,
    }
}

fn planar_mut(buf: &mut [u8], w: u32, h: u32, cw: u32, ch: u32) -> YuvPlanarImageMut<'_, u8> {
    let (y, u, v) = split3_mut(buf, w as usize * h as usize, cw as usize * ch as usize);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: w,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw,
        width: w,
        height: h,
    }
}

fn i420(buf: &[u8], w: u32, h: u32) -> YuvPlanarImage<'_, u8> {
    planar(buf, w, h, w / 2, h / 2)
}

fn i420_mut(buf: &mut [u8], w: u32, h: u32) -> YuvPlanarImageMut<'_, u8> {
    planar_mut(buf, w, h, w / 2, h / 2)
}

fn yuv422(buf: &[u8], w: u32, h: u32) -> YuvPlanarImage<'_, u8> {
    planar(buf, w, h, w / 2, h)
}

fn yuv422_mut(buf: &mut [u8], w: u32, h: u32) -> YuvPlanarImageMut<'_, u8> {
    planar_mut(buf, w, h, w / 2, h)
}

/// `from`'s size in pixel format `to`, or why that pixel format cannot hold it.
fn same_size(from: FrameFormat, to: PixelFormat) -> Result<FrameFormat, ConvertError> {
    from.with_pixel(to)
        .map_err(|source| ConvertError::Format { from, to, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelFormat::{Bgra, Gray8, I420, Rgb24, Yuyv};

    fn format(w: u32, h: u32, p: PixelFormat) -> FrameFormat {
        FrameFormat::new(w, h, p).unwrap()
    }

    /// A smooth BGRA test image (gradients, so 4:2:0 chroma subsampling loses little).
    fn gradient(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(w as usize * h as usize * 4);
        for y in 0..h {
            for x in 0..w {
                out.extend_from_slice(&[
                    (x * 255 / w.max(1)) as u8,
                    (y * 255 / h.max(1)) as u8,
                    ((x + y) * 127 / (w + h)) as u8 + 64,
                    255,
                ]);
            }
        }
        out
    }

    fn to(src_format: FrameFormat, src: &[u8], pixel: PixelFormat) -> Vec<u8> {
        let mut out = vec![0; src_format.with_pixel(pixel).unwrap().frame_bytes()];
        convert(src_format, src, pixel, &mut out).unwrap();
        out
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn bgra_rgb24_round_trip_is_exact() {
        let f = format(37, 11, Bgra);
        let bgra = gradient(37, 11);
        let rgb = to(f, &bgra, Rgb24);
        assert_eq!(&rgb[..3], &[bgra[2], bgra[1], bgra[0]]);
        assert_eq!(to(f.with_pixel(Rgb24).unwrap(), &rgb, Bgra), bgra);
    }

    #[test]
    fn gray_through_rgb_is_exact() {
        let f = format(256, 3, Gray8);
        let gray: Vec<u8> = (0..256 * 3).map(|i| (i % 256) as u8).collect();
        for rgb in [Bgra, Rgb24] {
            let colour = to(f, &gray, rgb);
            let back = to(f.with_pixel(rgb).unwrap(), &colour, Gray8);
            assert_eq!(back, gray, "gray8 -> {rgb} -> gray8");
        }
        let bgra = to(f, &gray, Bgra);
        assert_eq!(&bgra[4 * 200..4 * 201], &[200, 200, 200, 255]);
    }

    #[test]
    fn i420_through_yuyv_is_exact() {
        let f = format(64, 16, Bgra);
        let i420 = to(f, &gradient(64, 16), I420);
        let fi = f.with_pixel(I420).unwrap();
        let yuyv = to(fi, &i420, Yuyv);
        assert_eq!(to(f.with_pixel(Yuyv).unwrap(), &yuyv, I420), i420);
    }

    #[test]
    fn yuv_round_trips_stay_close() {
        let (w, h) = (96, 34);
        let f = format(w, h, Bgra);
        let bgra = gradient(w, h);
        for yuv in [I420, Yuyv] {
            let encoded = to(f, &bgra, yuv);
            let back = to(f.with_pixel(yuv).unwrap(), &encoded, Bgra);
            let d = max_diff(&back, &bgra);
            assert!(d <= 6, "bgra -> {yuv} -> bgra differs by {d}");
            let rgb = to(f.with_pixel(yuv).unwrap(), &encoded, Rgb24);
            let rgb_back = to(f.with_pixel(Rgb24).unwrap(), &rgb, yuv);
            let d = max_diff(&rgb_back, &encoded);
            assert!(d <= 2, "{yuv} -> rgb24 -> {yuv} differs by {d}");
        }
    }

    #[test]
    fn limited_range_levels() {
        // BT.601 limited: white is Y 235, black Y 16, grey chroma 128.
        let f = format(2, 2, Bgra);
        let white = [255u8; 16];
        let i420 = to(f, &white, I420);
        assert_eq!(i420, [235, 235, 235, 235, 128, 128]);
        let black = [0, 0, 0, 255].repeat(4);
        assert_eq!(to(f, &black, I420), [16, 16, 16, 16, 128, 128]);
        assert_eq!(to(f, &black, Yuyv), [16, 128, 16, 128, 16, 128, 16, 128]);
    }

    #[test]
    fn every_pair_converts_and_gray_yuv_pairs_keep_levels() {
        let (w, h) = (96, 34);
        let bgra = gradient(w, h);
        let f = format(w, h, Bgra);
        let mut converter = Converter::new();
        for a in PixelFormat::ALL {
            let fa = f.with_pixel(a).unwrap();
            let src = to(f, &bgra, a);
            for b in PixelFormat::ALL {
                let mut dst = vec![0; f.with_pixel(b).unwrap().frame_bytes()];
                converter.convert(fa, &src, b, &mut dst).unwrap();
                // Back to BGRA, every pair stays near the original picture.
                let back = to(f.with_pixel(b).unwrap(), &dst, Bgra);
                let near = to(fa, &src, Bgra);
                let gray_involved = a == Gray8 || b == Gray8;
                if !gray_involved {
                    let d = max_diff(&back, &near);
                    assert!(d <= 8, "{a} -> {b} differs by {d}");
                }
            }
        }
        // Gray ↔ YUV maps full-range gray onto limited-range luma.
        let fg = format(2, 2, Gray8);
        assert_eq!(to(fg, &[255; 4], I420), [235, 235, 235, 235, 128, 128]);
        assert_eq!(
            to(
                fg.with_pixel(I420).unwrap(),
                &[16, 16, 16, 16, 128, 128],
                Gray8
            ),
            [0; 4]
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let f = format(8, 4, Bgra);
        let src = vec![0; f.frame_bytes()];
        let mut dst = vec![0; 8 * 4 * 3];
        assert!(matches!(
            convert(f, &src[1..], Rgb24, &mut dst),
            Err(ConvertError::SourceLength {
                expected: 128,
                got: 127,
                ..
            })
        ));
        assert!(matches!(
            convert(f, &src, Rgb24, &mut dst[..95]),
            Err(ConvertError::DestinationLength {
                expected: 96,
                got: 95,
                ..
            })
        ));
        assert!(matches!(
            convert(f, &src, I420, &mut [0; 47]),
            Err(ConvertError::DestinationLength {
                expected: 48,
                got: 47,
                ..
            })
        ));
        let mut big = vec![0; 97];
        assert!(convert(f, &src, Rgb24, &mut big).is_err());
    }

    #[test]
    fn odd_size_to_subsampled_format_is_an_error() {
        let f = format(3, 3, Bgra);
        let err = convert(f, &[0; 36], I420, &mut [0; 20]).unwrap_err();
        assert!(matches!(err, ConvertError::Format { .. }), "{err}");
    }
}

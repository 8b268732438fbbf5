//! The mapping between GStreamer's raw video caps and framepipe's frame formats, and the
//! row-by-row copies between GStreamer's strided planes and framepipe's packed frames.
//!
//! framepipe frames are tightly packed (stride = the row's pixel bytes, planes back to
//! back); GStreamer rounds some strides up (RGB, GRAY8 and I420 rows to 4 bytes) and may
//! carry any stride in a `VideoMeta`. Rows are copied one by one, so both hold.
#![forbid(unsafe_code)]

use frame_vocab::{FormatError, FrameFormat, MAX_DIMENSION, PixelFormat};
use gst_video::VideoFormat;
use gst_video::prelude::*;

/// Why caps cannot become a framepipe stream.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// The caps are not complete raw video caps.
    #[error("not raw video caps: {0}")]
    NotRawVideo(String),
    /// A GStreamer format framepipe does not carry.
    #[error("format {0} is not carried by framepipe (put videoconvert before the sink)")]
    Unsupported(String),
    /// Interlaced video is not carried.
    #[error("interlaced video is not carried (put deinterlace before the sink)")]
    Interlaced,
    /// framepipe refuses the size (odd for I420/YUY2, zero, too large).
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// The framepipe pixel format of a GStreamer video format, if framepipe carries it.
pub fn pixel_of(format: VideoFormat) -> Option<PixelFormat> {
    match format {
        VideoFormat::Bgrx | VideoFormat::Bgra => Some(PixelFormat::Bgra),
        VideoFormat::Rgb => Some(PixelFormat::Rgb24),
        VideoFormat::Gray8 => Some(PixelFormat::Gray8),
        VideoFormat::Yuy2 => Some(PixelFormat::Yuyv),
        VideoFormat::I420 => Some(PixelFormat::I420),
        _ => None,
    }
}

/// The GStreamer formats that carry a framepipe pixel format's bytes unchanged. `bgra` is
/// both BGRx and BGRA (the same bytes), so elements that take only BGRA (`rtpvrawpay`)
/// link without a `videoconvert` that would rewrite the fourth byte.
pub fn video_formats(pixel: PixelFormat) -> &'static [VideoFormat] {
    match pixel {
        PixelFormat::Bgra => &[VideoFormat::Bgrx, VideoFormat::Bgra],
        PixelFormat::Rgb24 => &[VideoFormat::Rgb],
        PixelFormat::Gray8 => &[VideoFormat::Gray8],
        PixelFormat::Yuyv => &[VideoFormat::Yuy2],
        PixelFormat::I420 => &[VideoFormat::I420],
    }
}

/// Every GStreamer format the sink accepts.
pub fn all_video_formats() -> Vec<VideoFormat> {
    PixelFormat::ALL
        .iter()
        .flat_map(|&pixel| video_formats(pixel).iter().copied())
        .collect()
}

/// The sink's template: every carried format, any size framepipe allows, any rate.
pub fn sink_template_caps() -> gst::Caps {
    let max = i32::try_from(MAX_DIMENSION).unwrap_or(i32::MAX);
    gst_video::VideoCapsBuilder::new()
        .format_list(all_video_formats())
        .width_range(1..=max)
        .height_range(1..=max)
        .build()
}

/// The source's template: as the sink's, with the variable rate framepipe streams have.
pub fn src_template_caps() -> gst::Caps {
    let max = i32::try_from(MAX_DIMENSION).unwrap_or(i32::MAX);
    gst_video::VideoCapsBuilder::new()
        .format_list(all_video_formats())
        .width_range(1..=max)
        .height_range(1..=max)
        .framerate(gst::Fraction::new(0, 1))
        .build()
}

/// The caps a stream of `format` offers: each GStreamer format of its pixel format, its
/// size, and framerate 0/1 (framepipe frames come when the producer publishes them).
pub fn caps_for(format: FrameFormat) -> gst::Caps {
    let width = i32::try_from(format.width()).unwrap_or(i32::MAX);
    let height = i32::try_from(format.height()).unwrap_or(i32::MAX);
    gst_video::VideoCapsBuilder::new()
        .format_list(video_formats(format.pixel()).iter().copied())
        .width(width)
        .height(height)
        .framerate(gst::Fraction::new(0, 1))
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build()
}

/// The framepipe frame format of negotiated caps.
pub fn frame_format(info: &gst_video::VideoInfo) -> Result<FrameFormat, CapsError> {
    let pixel =
        pixel_of(info.format()).ok_or_else(|| CapsError::Unsupported(info.format().to_string()))?;
    if info.is_interlaced() {
        return Err(CapsError::Interlaced);
    }
    Ok(FrameFormat::new(info.width(), info.height(), pixel)?)
}

/// Parses caps into video info and the framepipe format.
pub fn parse(caps: &gst::CapsRef) -> Result<(gst_video::VideoInfo, FrameFormat), CapsError> {
    let info = gst_video::VideoInfo::from_caps(caps)
        .map_err(|_| CapsError::NotRawVideo(caps.to_string()))?;
    let format = frame_format(&info)?;
    Ok((info, format))
}

/// One plane of a packed framepipe frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedPlane {
    /// Where it starts in the frame.
    pub offset: usize,
    /// Bytes of one row.
    pub row_bytes: usize,
    /// Number of rows.
    pub rows: usize,
}

/// The planes of a packed framepipe frame, in GStreamer's plane order (I420: Y, U, V).
/// An iterator over a fixed array: the copies call this once per frame.
pub fn packed_planes(format: FrameFormat) -> impl ExactSizeIterator<Item = PackedPlane> {
    let stride = format.stride() as usize;
    let height = format.height() as usize;
    let whole = PackedPlane {
        offset: 0,
        row_bytes: stride,
        rows: height,
    };
    let luma = stride * height;
    let chroma = (stride / 2) * (height / 2);
    let chroma_at = |offset| PackedPlane {
        offset,
        row_bytes: stride / 2,
        rows: height / 2,
    };
    let planes = match format.pixel() {
        PixelFormat::I420 => 3,
        _ => 1,
    };
    [whole, chroma_at(luma), chroma_at(luma + chroma)]
        .into_iter()
        .take(planes)
}

/// Whether a layout (`planes` planes, plane `i` at byte `offset(i)` of the buffer with
/// rows `stride(i)` bytes apart) is exactly the packed framepipe frame of `format`.
fn is_packed(
    format: FrameFormat,
    planes: usize,
    offset: impl Fn(usize) -> Option<usize>,
    stride: impl Fn(usize) -> i32,
) -> bool {
    let packed = packed_planes(format);
    packed.len() == planes
        && packed.enumerate().all(|(index, plane)| {
            offset(index) == Some(plane.offset)
                && usize::try_from(stride(index)).ok() == Some(plane.row_bytes)
        })
}

/// Whether GStreamer's layout of `info` (its strides and plane offsets) is exactly the
/// packed framepipe frame of `format`, so that a slot can serve as a buffer of those caps
/// as it is (1920x1080 BGRx, 640x480 I420: yes; 642x480 I420 or RGB: no, GStreamer rounds
/// their rows to 4 bytes).
pub fn layout_is_packed(info: &gst_video::VideoInfo, format: FrameFormat) -> bool {
    info.size() == format.frame_bytes()
        && is_packed(
            format,
            info.n_planes() as usize,
            |index| Some(info.offset()[index]),
            |index| info.stride()[index],
        )
}

/// Where a mapped frame's bytes start, if its planes (as mapped, a `VideoMeta` of its own
/// included) lie exactly as in the packed framepipe frame of `format` from there.
pub fn packed_start(
    frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    format: FrameFormat,
) -> Option<*const u8> {
    let start = frame.plane_data(0).ok()?.as_ptr();
    let offset = |index: usize| {
        let plane = frame.plane_data(u32::try_from(index).ok()?).ok()?;
        (plane.as_ptr() as usize).checked_sub(start as usize)
    };
    is_packed(format, frame.n_planes() as usize, offset, |index| {
        frame.plane_stride()[index]
    })
    .then_some(start)
}

/// Why a copy between layouts did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The buffer has fewer planes or bytes than its caps promise.
    #[error("buffer plane {plane} too small: {have} bytes, {need} needed")]
    ShortPlane {
        plane: usize,
        have: usize,
        need: usize,
    },
    /// The packed frame has the wrong length.
    #[error("frame has {have} bytes, {need} expected")]
    FrameLength { have: usize, need: usize },
}

/// Checks a GStreamer plane can hold `rows` rows of `row_bytes` at `stride`.
fn check_plane(
    plane: usize,
    len: usize,
    stride: usize,
    packed: PackedPlane,
) -> Result<(), CopyError> {
    let need = match packed.rows {
        0 => 0,
        rows => (rows - 1) * stride + packed.row_bytes,
    };
    if stride < packed.row_bytes || len < need {
        return Err(CopyError::ShortPlane {
            plane,
            have: len,
            need,
        });
    }
    Ok(())
}

/// Copies a GStreamer video frame into a packed framepipe frame `dst` of `format`.
pub fn copy_to_packed(
    frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    format: FrameFormat,
    dst: &mut [u8],
) -> Result<(), CopyError> {
    if dst.len() != format.frame_bytes() {
        return Err(CopyError::FrameLength {
            have: dst.len(),
            need: format.frame_bytes(),
        });
    }
    for (index, packed) in packed_planes(format).enumerate() {
        let plane = u32::try_from(index).unwrap_or(u32::MAX);
        let src = frame.plane_data(plane).map_err(|_| CopyError::ShortPlane {
            plane: index,
            have: 0,
            need: packed.row_bytes,
        })?;
        let stride = usize::try_from(frame.plane_stride()[index]).unwrap_or(0);
        check_plane(index, src.len(), stride, packed)?;
        let out = &mut dst[packed.offset..packed.offset + packed.row_bytes * packed.rows];
        if stride == packed.row_bytes {
            out.copy_from_slice(&src[..out.len()]);
            continue;
        }
        for (row, chunk) in out.chunks_exact_mut(packed.row_bytes).enumerate() {
            let start = row * stride;
            chunk.copy_from_slice(&src[start..start + packed.row_bytes]);
        }
    }
    Ok(())
}

/// Copies a packed framepipe frame `src` of `format` into a writable GStreamer frame.
pub fn copy_from_packed(
    src: &[u8],
    format: FrameFormat,
    frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Result<(), CopyError> {
    if src.len() != format.frame_bytes() {
        return Err(CopyError::FrameLength {
            have: src.len(),
            need: format.frame_bytes(),
        });
    }
    for (index, packed) in packed_planes(format).enumerate() {
        let plane = u32::try_from(index).unwrap_or(u32::MAX);
        let stride = usize::try_from(frame.plane_stride()[index]).unwrap_or(0);
        let dst = frame
            .plane_data_mut(plane)
            .map_err(|_| CopyError::ShortPlane {
                plane: index,
                have: 0,
                need: packed.row_bytes,
            })?;
        check_plane(index, dst.len(), stride, packed)?;
        let input = &src[packed.offset..packed.offset + packed.row_bytes * packed.rows];
        if stride == packed.row_bytes {
            dst[..input.len()].copy_from_slice(input);
            continue;
        }
        for (row, chunk) in input.chunks_exact(packed.row_bytes).enumerate() {
            let start = row * stride;
            dst[start..start + packed.row_bytes].copy_from_slice(chunk);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    fn info(format: VideoFormat, width: u32, height: u32) -> gst_video::VideoInfo {
        gst_video::VideoInfo::builder(format, width, height)
            .build()
            .unwrap()
    }

    /// A GStreamer buffer whose every byte (padding included) is distinct from its
    /// neighbours, so a copy that reads padding or the wrong row shows.
    fn numbered_buffer(info: &gst_video::VideoInfo) -> gst::Buffer {
        let bytes: Vec<u8> = (0..info.size()).map(|i| (i % 251) as u8).collect();
        gst::Buffer::from_mut_slice(bytes)
    }

    #[test]
    fn every_carried_format_maps_both_ways() {
        init();
        for pixel in PixelFormat::ALL {
            for &vf in video_formats(pixel) {
                assert_eq!(pixel_of(vf), Some(pixel));
            }
        }
        assert_eq!(pixel_of(VideoFormat::Nv12), None);
        assert_eq!(pixel_of(VideoFormat::Rgba), None);
    }

    #[test]
    fn odd_sizes_are_refused_for_i420_and_yuy2() {
        init();
        for (vf, w, h) in [
            (VideoFormat::I420, 641, 480),
            (VideoFormat::I420, 640, 481),
            (VideoFormat::Yuy2, 641, 480),
        ] {
            let caps = info(vf, w, h).to_caps().unwrap();
            assert!(
                matches!(
                    parse(&caps),
                    Err(CapsError::Format(FormatError::Odd { .. }))
                ),
                "{vf} {w}x{h}"
            );
        }
        let caps = info(VideoFormat::Nv12, 640, 480).to_caps().unwrap();
        assert!(matches!(parse(&caps), Err(CapsError::Unsupported(_))));
    }

    /// At 642x480 GStreamer pads RGB, GRAY8 and I420 rows to 4 bytes; framepipe does not.
    #[test]
    fn strided_planes_copy_row_by_row_at_642x480() {
        init();
        for vf in [
            VideoFormat::I420,
            VideoFormat::Rgb,
            VideoFormat::Gray8,
            VideoFormat::Yuy2,
            VideoFormat::Bgrx,
        ] {
            let info = info(vf, 642, 480);
            let format = frame_format(&info).unwrap();
            let buffer = numbered_buffer(&info);
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(&buffer, &info).unwrap();
            let mut packed = vec![0u8; format.frame_bytes()];
            copy_to_packed(&frame, format, &mut packed).unwrap();

            // Each packed row is the start of GStreamer's row at its own stride.
            let data = buffer.map_readable().unwrap();
            for (index, plane) in packed_planes(format).enumerate() {
                let offset = info.offset()[index];
                let stride = info.stride()[index] as usize;
                for row in 0..plane.rows {
                    let expected = &data[offset + row * stride..][..plane.row_bytes];
                    let got = &packed[plane.offset + row * plane.row_bytes..][..plane.row_bytes];
                    assert_eq!(got, expected, "{vf} plane {index} row {row}");
                }
            }
            if matches!(
                vf,
                VideoFormat::I420 | VideoFormat::Rgb | VideoFormat::Gray8
            ) {
                assert!(info.size() > format.frame_bytes(), "{vf} is padded");
            }

            // And back: the padding aside, the same bytes.
            let mut out = gst::Buffer::with_size(info.size()).unwrap();
            {
                let out = out.get_mut().unwrap();
                let mut frame =
                    gst_video::VideoFrameRef::from_buffer_ref_writable(out, &info).unwrap();
                copy_from_packed(&packed, format, &mut frame).unwrap();
            }
            let out = gst_video::VideoFrameRef::from_buffer_ref_readable(&out, &info).unwrap();
            let mut again = vec![0u8; format.frame_bytes()];
            copy_to_packed(&out, format, &mut again).unwrap();
            assert_eq!(again, packed, "{vf}");
        }
    }

    #[test]
    fn stream_caps_offer_bgrx_and_bgra_for_bgra() {
        init();
        let format = FrameFormat::new(320, 240, PixelFormat::Bgra).unwrap();
        let caps = caps_for(format);
        for vf in [VideoFormat::Bgrx, VideoFormat::Bgra] {
            let fixed = info(vf, 320, 240).to_caps().unwrap();
            assert!(caps.can_intersect(&fixed), "{vf}");
        }
        assert!(!caps.can_intersect(&info(VideoFormat::Rgb, 320, 240).to_caps().unwrap()));
    }

    #[test]
    fn a_slot_serves_as_a_buffer_only_where_gstreamer_packs_rows_as_framepipe_does() {
        init();
        for (format, width, height, packed) in [
            (VideoFormat::Bgrx, 1920, 1080, true),
            (VideoFormat::I420, 640, 480, true),
            (VideoFormat::Yuy2, 642, 480, true),
            (VideoFormat::I420, 642, 480, false),
            (VideoFormat::Rgb, 642, 480, false),
            (VideoFormat::Gray8, 642, 480, false),
        ] {
            let info = info(format, width, height);
            let (_, frame) = parse(&info.to_caps().unwrap()).unwrap();
            assert_eq!(
                layout_is_packed(&info, frame),
                packed,
                "{format:?} {width}x{height}"
            );
        }
    }
}

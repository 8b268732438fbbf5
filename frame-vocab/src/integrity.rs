//! The integrity stamp of moving-pattern frames, and [`verify`] / [`decode_seq`], which any
//! reader uses to tell a whole frame from a torn or corrupt one.
//!
//! The stamp is written in the frame's own pixel format, after any conversion, so a lossy
//! YUV conversion never touches it and checks are exact in every format:
//! - **Seq header**: the first row of the first plane (at least 16 bytes; a narrow frame
//!   continues on the next rows) holds the seq as a little-endian u64 followed by its
//!   bitwise complement, repeated.
//! - **Sample markers**: 64 fixed points spread over the whole frame — each in its own band
//!   of rows, the last one on the last row, columns scattered — hold bytes derived from
//!   (seq, x, y): B, G, R for `bgra`/`rgb24`; the luma byte for `gray8`; the 4-byte
//!   macropixel for `yuyv`; Y, U and V for `i420`.
//!
//! A frame written top to bottom and read half-way carries the header of one seq and the
//! lower markers of another, so [`verify`] fails on it. Points whose bytes would overlap an
//! earlier point's (tiny frames, shared chroma) are dropped, identically on both sides.

use crate::format::{FrameFormat, PixelFormat};

/// Why a frame is not the whole moving-pattern frame it should be (see
/// [`verify`](crate::verify)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The frame is not exactly one frame of its format.
    #[error("frame holds {got} bytes, a {format} frame needs {expected}")]
    Length {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The format is too small to carry a stamp.
    #[error("a {format} frame is too small to carry a pattern stamp")]
    TooSmall { format: FrameFormat },
    /// The first bytes are not a seq and its complement: not a moving-pattern frame.
    #[error("frame carries no seq stamp (not a moving-pattern frame, or corrupt)")]
    NoSeq,
    /// The header starts with a seq but a later copy of it differs: torn within a row.
    #[error("seq header of frame {seq} is torn or corrupt at byte {offset}")]
    HeaderTorn { seq: u64, offset: usize },
    /// The header carries another seq.
    #[error("expected frame {expected}, the frame carries seq {found}")]
    WrongSeq { expected: u64, found: u64 },
    /// A sample point holds other bytes than frame `seq` puts there: torn or corrupt.
    #[error(
        "sample at ({x}, {y}) (byte {offset}) is {found:#04x}, expected {expected:#04x}: \
         torn or corrupt frame"
    )]
    Sample {
        x: u32,
        y: u32,
        offset: usize,
        expected: u8,
        found: u8,
    },
}

/// How many sample points a frame has (fewer on tiny frames).
pub const SAMPLE_POINTS: usize = 64;

/// Bytes of one header block: the seq and its complement.
const BLOCK: usize = 16;

/// Most bytes one sample point covers (a YUYV macropixel).
const MAX_SAMPLE_BYTES: usize = 4;

/// Whether frames of `format` are large enough to carry the stamp: the first plane must
/// hold at least one 16-byte header block (a 2x2 `bgra`, a 4x4 `gray8`).
pub fn carries_stamp(format: FrameFormat) -> bool {
    first_plane_bytes(format) >= BLOCK
}

/// Writes the stamp of `seq` into `frame`, one frame of `format`. Does nothing on a frame
/// that is too small (see [`carries_stamp`]) or of the wrong length.
pub fn stamp(format: FrameFormat, frame: &mut [u8], seq: u64) {
    if frame.len() != format.frame_bytes() || !carries_stamp(format) {
        return;
    }
    let block = header_block(seq);
    for chunk in frame[..header_len(format)].chunks_exact_mut(BLOCK) {
        chunk.copy_from_slice(&block);
    }
    let samples = Samples::of(format);
    for sample in samples.iter() {
        let marker = marker(seq, sample.x, sample.y);
        for (i, &offset) in sample.offsets().iter().enumerate() {
            frame[offset] = marker[i];
        }
    }
}

/// Reads the seq a stamped frame carries: `None` if the frame has the wrong length, is too
/// small, or its header is not a consistent seq (not a moving-pattern frame, or torn
/// within the first row).
pub fn decode_seq(format: FrameFormat, frame: &[u8]) -> Option<u64> {
    read_header(format, frame).ok()
}

/// Checks that `frame`, one frame of `format`, is the whole moving-pattern frame number
/// `seq`: its header carries `seq` and each sample point holds the bytes expected for
/// (`seq`, x, y). Cost: one pass over the first row plus 64 points.
pub fn verify(format: FrameFormat, frame: &[u8], seq: u64) -> Result<(), VerifyError> {
    let found = read_header(format, frame)?;
    if found != seq {
        return Err(VerifyError::WrongSeq {
            expected: seq,
            found,
        });
    }
    for sample in Samples::of(format).iter() {
        let marker = marker(seq, sample.x, sample.y);
        for (i, &offset) in sample.offsets().iter().enumerate() {
            if frame[offset] != marker[i] {
                return Err(VerifyError::Sample {
                    x: sample.x,
                    y: sample.y,
                    offset,
                    expected: marker[i],
                    found: frame[offset],
                });
            }
        }
    }
    Ok(())
}

/// Validates length and size, then decodes and cross-checks the header.
fn read_header(format: FrameFormat, frame: &[u8]) -> Result<u64, VerifyError> {
    if frame.len() != format.frame_bytes() {
        return Err(VerifyError::Length {
            format,
            expected: format.frame_bytes(),
            got: frame.len(),
        });
    }
    if !carries_stamp(format) {
        return Err(VerifyError::TooSmall { format });
    }
    let first: [u8; BLOCK] = frame[..BLOCK].try_into().unwrap_or([0; BLOCK]);
    let (seq, complement) = split_block(&first);
    if seq != !complement {
        return Err(VerifyError::NoSeq);
    }
    for (i, chunk) in frame[..header_len(format)].chunks_exact(BLOCK).enumerate() {
        if chunk != first {
            return Err(VerifyError::HeaderTorn {
                seq,
                offset: i * BLOCK,
            });
        }
    }
    Ok(seq)
}

fn header_block(seq: u64) -> [u8; BLOCK] {
    let mut block = [0; BLOCK];
    block[..8].copy_from_slice(&seq.to_le_bytes());
    block[8..].copy_from_slice(&(!seq).to_le_bytes());
    block
}

fn split_block(block: &[u8; BLOCK]) -> (u64, u64) {
    let mut seq = [0; 8];
    let mut complement = [0; 8];
    seq.copy_from_slice(&block[..8]);
    complement.copy_from_slice(&block[8..]);
    (u64::from_le_bytes(seq), u64::from_le_bytes(complement))
}

/// Bytes of the first (or only) plane.
fn first_plane_bytes(format: FrameFormat) -> usize {
    format.stride() as usize * format.height() as usize
}

/// Bytes the header covers: the first row rounded down to whole blocks, at least one block.
fn header_len(format: FrameFormat) -> usize {
    let row = format.stride() as usize;
    (row - row % BLOCK).max(BLOCK)
}

/// Rows of the first plane the header touches (sample points start below them).
fn header_rows(format: FrameFormat) -> usize {
    header_len(format).div_ceil(format.stride() as usize)
}

/// The marker bytes of point (`x`, `y`) in frame `seq` (splitmix64 of the three).
fn marker(seq: u64, x: u32, y: u32) -> [u8; 8] {
    let mut z = seq ^ (u64::from(x) << 32 | u64::from(y)).rotate_left(17);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()
}

/// One sample point and the frame bytes its marker occupies.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    x: u32,
    y: u32,
    offsets: [usize; MAX_SAMPLE_BYTES],
    len: usize,
}

impl Sample {
    fn offsets(&self) -> &[usize] {
        &self.offsets[..self.len]
    }
}

/// The sample points of one format, computed on the stack.
struct Samples {
    points: [Sample; SAMPLE_POINTS],
    count: usize,
}

impl Samples {
    fn of(format: FrameFormat) -> Samples {
        let mut samples = Samples {
            points: [Sample::default(); SAMPLE_POINTS],
            count: 0,
        };
        let (w, h) = (format.width() as usize, format.height() as usize);
        let top = header_rows(format);
        if top >= h {
            return samples;
        }
        let rows = h - 1 - top;
        let last = SAMPLE_POINTS - 1;
        for k in 0..SAMPLE_POINTS {
            // Point k sits in the k-th band of rows (k = 63 on the last row); 37 is odd, so
            // k * 37 mod 64 visits every column band once.
            let y = top + k * rows / last;
            let x = (k * 37 % SAMPLE_POINTS) * (w - 1) / last;
            let sample = sample_at(format, x, y);
            // Rows only grow with k, and two points share bytes only on the same row or on
            // the two rows of one 4:2:0 chroma row: look back just that far.
            let clashes = samples.points[..samples.count]
                .iter()
                .rev()
                .take_while(|other| other.y as usize + 1 >= y)
                .any(|other| other.offsets().iter().any(|o| sample.offsets().contains(o)));
            if !clashes {
                samples.points[samples.count] = sample;
                samples.count += 1;
            }
        }
        samples
    }

    fn iter(&self) -> impl Iterator<Item = &Sample> {
        self.points[..self.count].iter()
    }
}

/// The bytes of point (`x`, `y`) that carry its marker in `format`.
fn sample_at(format: FrameFormat, x: usize, y: usize) -> Sample {
    let w = format.width() as usize;
    let h = format.height() as usize;
    let pixel = y * w + x;
    let (offsets, len) = match format.pixel() {
        PixelFormat::Bgra => ([pixel * 4, pixel * 4 + 1, pixel * 4 + 2, 0], 3),
        PixelFormat::Rgb24 => ([pixel * 3, pixel * 3 + 1, pixel * 3 + 2, 0], 3),
        PixelFormat::Gray8 => ([pixel, 0, 0, 0], 1),
        PixelFormat::Yuyv => {
            let base = y * w * 2 + (x & !1) * 2;
            ([base, base + 1, base + 2, base + 3], 4)
        }
        PixelFormat::I420 => {
            let chroma = (y / 2) * (w / 2) + x / 2;
            let u = w * h + chroma;
            let v = w * h + (w / 2) * (h / 2) + chroma;
            ([pixel, u, v, 0], 3)
        }
    };
    Sample {
        x: x as u32,
        y: y as u32,
        offsets,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(w: u32, h: u32, p: PixelFormat) -> FrameFormat {
        FrameFormat::new(w, h, p).unwrap()
    }

    #[test]
    fn stamped_frames_verify_in_every_format() {
        for pixel in PixelFormat::ALL {
            for (w, h) in [(64, 48), (2, 8), (1920, 1080), (16, 2)] {
                let f = format(w, h, pixel);
                for seq in [0, 1, 2, 255, 1 << 40, u64::MAX] {
                    let mut frame = vec![0x5a; f.frame_bytes()];
                    stamp(f, &mut frame, seq);
                    assert_eq!(verify(f, &frame, seq), Ok(()), "{f} seq {seq}");
                    assert_eq!(decode_seq(f, &frame), Some(seq));
                }
            }
        }
    }

    #[test]
    fn sample_points_cover_the_frame() {
        for pixel in PixelFormat::ALL {
            let f = format(1920, 1080, pixel);
            let samples = Samples::of(f);
            assert_eq!(samples.count, SAMPLE_POINTS, "{f}");
            assert!(samples.iter().any(|s| s.y == 1079), "{f}: last row sampled");
            assert!(
                samples.iter().all(|s| s.y >= 1),
                "{f}: header row left alone"
            );
            let max_offset = samples.iter().flat_map(|s| s.offsets()).max().unwrap();
            assert!(
                *max_offset >= f.frame_bytes() * 63 / 64,
                "{f}: reaches the end"
            );
        }
    }

    #[test]
    fn other_seq_and_unstamped_frames_fail() {
        let f = format(64, 48, PixelFormat::Bgra);
        let mut frame = vec![0; f.frame_bytes()];
        assert_eq!(verify(f, &frame, 0), Err(VerifyError::NoSeq));
        assert_eq!(decode_seq(f, &frame), None);
        stamp(f, &mut frame, 7);
        assert_eq!(
            verify(f, &frame, 8),
            Err(VerifyError::WrongSeq {
                expected: 8,
                found: 7
            })
        );
        assert!(matches!(
            verify(f, &frame[1..], 7),
            Err(VerifyError::Length { .. })
        ));
        let tiny = format(3, 3, PixelFormat::Gray8);
        assert_eq!(
            verify(tiny, &[0; 9], 1),
            Err(VerifyError::TooSmall { format: tiny })
        );
    }

    #[test]
    fn a_torn_header_fails() {
        let f = format(64, 4, PixelFormat::Gray8);
        let mut frame = vec![0; f.frame_bytes()];
        stamp(f, &mut frame, 3);
        frame[40] ^= 1;
        assert_eq!(
            verify(f, &frame, 3),
            Err(VerifyError::HeaderTorn { seq: 3, offset: 32 })
        );
        assert_eq!(decode_seq(f, &frame), None);
    }
}

//! The test-pattern source: static colour bars, or bars with a moving box and the frame
//! number, stamped so any reader can [`verify`](crate::verify) each frame.
//!
//! Layout, for a `width` x `height` frame (pixel x is in bar `x * 8 / width`):
//! - `bars`: the eight [`BARS`] across the whole frame, equally wide; the same every frame.
//! - `moving`: the bars over the top [`moving_bars_height`] rows (3/4); below them a
//!   near-black strip with the frame number in white 7-segment digits; a white box of
//!   `min(width, bars height) / 6` pixels bouncing over the bars; and the integrity stamp
//!   of [`integrity`](crate::integrity) (seq header on the first row, 64 marker points).
//!   Everything is a function of (seq, x, y) only.
//!
//! Frames are drawn in BGRA — whole rows copied from precomputed templates, then the box
//! and digits overlaid — and converted to the stream format through
//! [`Converter`](crate::Converter); the stamp is written last, in the stream format.
//! Static `bars` in another format are converted once and copied.

use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat};

use super::canvas::Canvas;
use super::digits::{self, Layout};
use crate::source::{Filled, FrameSource, SourceError};
use frame_vocab::convert::Converter;
use frame_vocab::integrity;

/// The colour bars, left to right, as (R, G, B): 75% white, yellow, cyan, green, magenta,
/// red, blue, then black (SMPTE-like, 75% of full scale = 191).
pub const BARS: [[u8; 3]; 8] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
    [0, 0, 0],
];

/// How many rows of a `height`-high frame the `moving` pattern's bars cover (the top
/// three quarters); the `bars` pattern covers them all.
pub fn moving_bars_height(height: u32) -> u32 {
    (u64::from(height) * 3 / 4) as u32
}

/// The colour (R, G, B) of the bar that column `x` of a `width`-wide frame falls in.
pub fn bar_colour(width: u32, x: u32) -> [u8; 3] {
    let index = (u64::from(x) * 8 / u64::from(width.max(1))).min(7);
    BARS[index as usize]
}

/// The strip under the `moving` pattern's bars (B, G, R, X).
const STRIP: [u8; 4] = [24, 24, 24, 255];
/// The box and the digits (B, G, R, X).
const WHITE: [u8; 4] = [255, 255, 255, 255];

/// Draws the patterns in BGRA for one frame size, from precomputed rows.
#[derive(Debug)]
struct Painter {
    width: usize,
    height: usize,
    /// One BGRA row of the bars.
    bars_row: Vec<u8>,
    /// One BGRA row of the strip under the `moving` bars.
    strip_row: Vec<u8>,
    /// Rows of bars in the `moving` pattern.
    bars_height: usize,
}

impl Painter {
    fn new(width: u32, height: u32) -> Painter {
        let bars_row = (0..width)
            .flat_map(|x| {
                let [r, g, b] = bar_colour(width, x);
                [b, g, r, 255]
            })
            .collect();
        Painter {
            width: width as usize,
            height: height as usize,
            bars_row,
            strip_row: STRIP.repeat(width as usize),
            bars_height: moving_bars_height(height) as usize,
        }
    }

    fn paint(&self, kind: PatternKind, seq: u64, bgra: &mut [u8]) {
        let mut canvas = Canvas::new(bgra, self.width, self.height);
        match kind {
            PatternKind::Bars => canvas.copy_rows(0..self.height, &self.bars_row),
            PatternKind::Moving => self.paint_moving(&mut canvas, seq),
        }
    }

    fn paint_moving(&self, canvas: &mut Canvas<'_>, seq: u64) {
        let (w, h, bars) = (self.width, self.height, self.bars_height);
        canvas.copy_rows(0..bars, &self.bars_row);
        canvas.copy_rows(bars..h, &self.strip_row);

        let side = (w.min(bars) / 6).max(1);
        let x = bounce(
            seq.wrapping_mul((w as u64 / 160).max(1)),
            w.saturating_sub(side),
        );
        let y = bounce(
            seq.wrapping_mul((h as u64 / 135).max(1)),
            bars.saturating_sub(side),
        );
        canvas.fill_rect(x, y, side, side, WHITE);

        let strip = h - bars;
        let margin = (strip / 8).max(1);
        let layout = Layout {
            x: margin,
            y: bars + margin,
            height: strip.saturating_sub(2 * margin),
            max_width: w.saturating_sub(2 * margin),
        };
        if layout.height > 0 {
            digits::draw_number(canvas, seq, layout, WHITE);
        }
    }
}

/// A triangle wave: `t` folded into `0..=range`, back and forth.
fn bounce(t: u64, range: usize) -> usize {
    let range = range as u64;
    if range == 0 {
        return 0;
    }
    let p = t % (2 * range);
    (if p <= range { p } else { 2 * range - p }) as usize
}

/// The `pattern` source (`--source pattern`, `--pattern moving|bars`). Any pixel format.
#[derive(Debug)]
pub struct PatternSource {
    kind: PatternKind,
    format: FrameFormat,
    painter: Painter,
    converter: Converter,
    /// A BGRA frame to draw in when the stream is another format (empty for BGRA).
    canvas: Vec<u8>,
    /// The static bars already in the stream format (empty for BGRA or until needed).
    bars_frame: Vec<u8>,
}

impl PatternSource {
    /// A pattern source for `format`. Fails if the frame is too small to carry the seq
    /// stamp (fewer than 16 bytes in the first plane).
    pub fn new(format: FrameFormat, kind: PatternKind) -> Result<PatternSource, SourceError> {
        if !integrity::carries_stamp(format) {
            return Err(SourceError::PatternTooSmall { format });
        }
        Ok(PatternSource {
            kind,
            format,
            painter: Painter::new(format.width(), format.height()),
            converter: Converter::new(),
            canvas: Vec::new(),
            bars_frame: Vec::new(),
        })
    }

    /// The pattern being drawn.
    pub fn kind(&self) -> PatternKind {
        self.kind
    }

    /// Draws frame `seq` into `dst` (one frame of the stream format).
    pub fn render(&mut self, seq: u64, dst: &mut [u8]) -> Result<(), SourceError> {
        let format = self.format;
        if dst.len() != format.frame_bytes() {
            return Err(SourceError::FrameLength {
                format,
                expected: format.frame_bytes(),
                got: dst.len(),
            });
        }
        if format.pixel() == PixelFormat::Bgra {
            self.painter.paint(self.kind, seq, dst);
        } else if self.kind == PatternKind::Bars {
            if self.bars_frame.is_empty() {
                self.bars_frame = vec![0; format.frame_bytes()];
                let mut bars = std::mem::take(&mut self.bars_frame);
                let result = self.draw_converted(0, &mut bars);
                self.bars_frame = bars;
                result?;
            }
            dst.copy_from_slice(&self.bars_frame);
        } else {
            self.draw_converted(seq, dst)?;
        }
        if self.kind == PatternKind::Moving {
            integrity::stamp(format, dst, seq);
        }
        Ok(())
    }

    /// Draws in the BGRA canvas, then converts into `dst`.
    fn draw_converted(&mut self, seq: u64, dst: &mut [u8]) -> Result<(), SourceError> {
        let bgra = self
            .format
            .with_pixel(PixelFormat::Bgra)
            .map_err(|source| {
                SourceError::Convert(frame_vocab::ConvertError::Format {
                    from: self.format,
                    to: PixelFormat::Bgra,
                    source,
                })
            })?;
        self.canvas.resize(bgra.frame_bytes(), 0);
        self.painter.paint(self.kind, seq, &mut self.canvas);
        self.converter
            .convert(bgra, &self.canvas, self.format.pixel(), dst)?;
        Ok(())
    }
}

impl FrameSource for PatternSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        format!("pattern {} {}", self.kind, self.format)
    }

    fn fill(&mut self, seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        self.render(seq, dst)?;
        Ok(Filled::Frame { capture_ns: None })
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        *self = PatternSource::new(format, self.kind)?;
        Ok(())
    }

    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError> {
        self.kind = pattern;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_vocab::VerifyError;
    use frame_vocab::{convert, decode_seq, verify};

    fn format(w: u32, h: u32, p: PixelFormat) -> FrameFormat {
        FrameFormat::new(w, h, p).unwrap()
    }

    fn render(source: &mut PatternSource, seq: u64) -> Vec<u8> {
        let mut frame = vec![0; source.format().frame_bytes()];
        assert_eq!(
            source.fill(seq, &mut frame).unwrap(),
            Filled::Frame { capture_ns: None }
        );
        frame
    }

    #[test]
    fn moving_frames_verify_in_every_format() {
        for pixel in PixelFormat::ALL {
            for (w, h) in [(320, 240), (64, 36), (4, 4)] {
                let f = format(w, h, pixel);
                let mut source = PatternSource::new(f, PatternKind::Moving).unwrap();
                for seq in [1, 2, 3, 99, 12_345, 1 << 33] {
                    let frame = render(&mut source, seq);
                    assert_eq!(verify(f, &frame, seq), Ok(()), "{f} seq {seq}");
                    assert_eq!(decode_seq(f, &frame), Some(seq));
                }
            }
        }
    }

    #[test]
    fn half_and_half_frames_fail() {
        for pixel in PixelFormat::ALL {
            let f = format(320, 240, pixel);
            let mut source = PatternSource::new(f, PatternKind::Moving).unwrap();
            let (a, b) = (render(&mut source, 41), render(&mut source, 42));
            let half = f.frame_bytes() / 2;
            let torn: Vec<u8> = [&a[..half], &b[half..]].concat();
            assert!(
                matches!(verify(f, &torn, 41), Err(VerifyError::Sample { .. })),
                "{f}: top of 41 + bottom of 42 passed as 41"
            );
            assert!(verify(f, &torn, 42).is_err(), "{f}: passed as 42");
            let torn: Vec<u8> = [&b[..half], &a[half..]].concat();
            assert!(verify(f, &torn, 41).is_err() && verify(f, &torn, 42).is_err());
            // A tear only a few rows from the bottom is caught too.
            let near_end = f.frame_bytes() - f.frame_bytes() / 40;
            let torn: Vec<u8> = [&a[..near_end], &b[near_end..]].concat();
            assert!(verify(f, &torn, 41).is_err(), "{f}: late tear passed");
        }
    }

    #[test]
    fn any_flipped_sample_byte_fails() {
        for pixel in PixelFormat::ALL {
            let f = format(64, 64, pixel);
            let mut source = PatternSource::new(f, PatternKind::Moving).unwrap();
            let mut frame = render(&mut source, 7);
            // Flip every byte in turn: exactly the header and sample bytes are noticed.
            let mut flipped_any = 0;
            for offset in 0..frame.len() {
                frame[offset] ^= 0x01;
                if verify(f, &frame, 7).is_err() {
                    flipped_any += 1;
                }
                frame[offset] ^= 0x01;
            }
            assert_eq!(verify(f, &frame, 7), Ok(()));
            let header = f.stride() as usize - f.stride() as usize % 16;
            let per_point = match pixel {
                PixelFormat::Bgra | PixelFormat::Rgb24 | PixelFormat::I420 => 3,
                PixelFormat::Gray8 => 1,
                PixelFormat::Yuyv => 4,
            };
            assert_eq!(
                flipped_any,
                header + 64 * per_point,
                "{f}: every header and sample byte is checked"
            );
        }
    }

    #[test]
    fn frames_depend_only_on_seq() {
        let f = format(200, 100, PixelFormat::I420);
        let mut one = PatternSource::new(f, PatternKind::Moving).unwrap();
        let mut two = PatternSource::new(f, PatternKind::Moving).unwrap();
        let a = render(&mut one, 5);
        render(&mut two, 9);
        assert_eq!(render(&mut two, 5), a);
        assert_ne!(render(&mut one, 6), a);
    }

    #[test]
    fn bars_are_where_documented() {
        let (w, h) = (160, 90);
        let f = format(w, h, PixelFormat::Bgra);
        let mut source = PatternSource::new(f, PatternKind::Bars).unwrap();
        let frame = render(&mut source, 1);
        assert_eq!(render(&mut source, 500), frame, "bars are static");
        for (i, colour) in BARS.iter().enumerate() {
            let x = (i as u32 * w / 8) + w / 16; // middle of bar i
            assert_eq!(bar_colour(w, x), *colour);
            for y in [0, h / 2, h - 1] {
                let p = ((y * w + x) * 4) as usize;
                let [r, g, b] = *colour;
                assert_eq!(&frame[p..p + 4], &[b, g, r, 255], "bar {i} at ({x}, {y})");
            }
        }
        // Edges: the first and last column of bar 1.
        assert_eq!(bar_colour(w, 20), BARS[1]);
        assert_eq!(bar_colour(w, 19), BARS[0]);
        assert_eq!(bar_colour(w, 39), BARS[1]);
        assert_eq!(bar_colour(w, 159), BARS[7]);
        assert!(verify(f, &frame, 1).is_err(), "bars carry no stamp");
    }

    #[test]
    fn bars_in_other_formats_convert_the_bgra_bars() {
        let f = format(64, 8, PixelFormat::Bgra);
        let bgra = render(&mut PatternSource::new(f, PatternKind::Bars).unwrap(), 1);
        for pixel in [PixelFormat::Rgb24, PixelFormat::Yuyv, PixelFormat::I420] {
            let fp = f.with_pixel(pixel).unwrap();
            let frame = render(&mut PatternSource::new(fp, PatternKind::Bars).unwrap(), 3);
            let mut expected = vec![0; fp.frame_bytes()];
            convert(f, &bgra, pixel, &mut expected).unwrap();
            assert_eq!(frame, expected, "{pixel}");
        }
    }

    #[test]
    fn moving_shows_box_and_digits() {
        let (w, h) = (320, 240);
        let f = format(w, h, PixelFormat::Bgra);
        let mut source = PatternSource::new(f, PatternKind::Moving).unwrap();
        let frame = render(&mut source, 8);
        let white_in = |rows: std::ops::Range<u32>| {
            rows.flat_map(|y| (0..w).map(move |x| ((y * w + x) * 4) as usize))
                .filter(|&p| frame[p..p + 3] == [255, 255, 255])
                .count()
        };
        let side = (240 * 3 / 4 / 6) as usize;
        assert!(white_in(1..180) >= side * side - 64, "the box is drawn");
        assert!(white_in(180..240) > 100, "the digits are drawn");
        let other = render(&mut source, 9);
        assert_ne!(
            frame[4 * 320 * 20..],
            other[4 * 320 * 20..],
            "the box moves"
        );
    }

    #[test]
    fn set_pattern_and_set_format_switch() {
        let f = format(64, 48, PixelFormat::Bgra);
        let mut source = PatternSource::new(f, PatternKind::Bars).unwrap();
        source.set_pattern(PatternKind::Moving).unwrap();
        let g = format(32, 16, PixelFormat::Yuyv);
        source.set_format(g).unwrap();
        assert_eq!(source.format(), g);
        assert_eq!(source.kind(), PatternKind::Moving);
        let frame = render(&mut source, 4);
        assert_eq!(verify(g, &frame, 4), Ok(()));
        assert!(source.describe().contains("moving"));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let tiny = format(3, 3, PixelFormat::Gray8);
        assert!(matches!(
            PatternSource::new(tiny, PatternKind::Moving),
            Err(SourceError::PatternTooSmall { .. })
        ));
        let f = format(8, 8, PixelFormat::Bgra);
        let mut source = PatternSource::new(f, PatternKind::Moving).unwrap();
        assert!(matches!(
            source.fill(1, &mut [0; 10]),
            Err(SourceError::FrameLength { .. })
        ));
    }
}

//! A BGRA drawing surface over a frame buffer: whole rows copied from a template and
//! clipped solid rectangles, the only two operations the test pattern needs.

use std::ops::Range;

/// Bytes per BGRA pixel.
const BPP: usize = 4;

/// A tightly packed BGRA frame being drawn on. Drawing outside the frame is clipped.
pub(crate) struct Canvas<'a> {
    pixels: &'a mut [u8],
    width: usize,
    height: usize,
}

impl<'a> Canvas<'a> {
    /// A canvas over `pixels`, which should hold `width * height` BGRA pixels; rows beyond
    /// the end of a shorter buffer are skipped rather than drawn.
    pub(crate) fn new(pixels: &'a mut [u8], width: usize, height: usize) -> Canvas<'a> {
        Canvas {
            pixels,
            width,
            height,
        }
    }

    /// Copies `row` (one row of BGRA pixels) into each row of `rows`.
    pub(crate) fn copy_rows(&mut self, rows: Range<usize>, row: &[u8]) {
        let stride = self.width * BPP;
        let rows = rows.start.min(self.height)..rows.end.min(self.height);
        let Some(region) = self.pixels.get_mut(rows.start * stride..rows.end * stride) else {
            return;
        };
        for dst in region.chunks_exact_mut(stride) {
            if let Some(src) = row.get(..stride) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Fills the rectangle at (`x`, `y`) of `w` x `h` pixels with `colour` (B, G, R, X).
    pub(crate) fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 4]) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        if x >= x_end || y >= y_end {
            return;
        }
        let stride = self.width * BPP;
        for row in y..y_end {
            let start = row * stride;
            if let Some(span) = self.pixels.get_mut(start + x * BPP..start + x_end * BPP) {
                for pixel in span.chunks_exact_mut(BPP) {
                    pixel.copy_from_slice(&colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_are_clipped() {
        let mut buf = vec![0u8; 4 * 3 * 4];
        let mut canvas = Canvas::new(&mut buf, 4, 3);
        canvas.fill_rect(3, 2, 10, 10, [1, 2, 3, 4]);
        canvas.fill_rect(5, 0, 1, 1, [9; 4]);
        assert_eq!(&buf[44..48], &[1, 2, 3, 4]);
        assert_eq!(buf.iter().filter(|&&b| b != 0).count(), 4);
    }

    #[test]
    fn rows_are_copied() {
        let mut buf = vec![0u8; 2 * 3 * 4];
        let row = [7u8; 8];
        Canvas::new(&mut buf, 2, 3).copy_rows(1..9, &row);
        assert_eq!(&buf[..8], &[0; 8]);
        assert_eq!(&buf[8..], &[7; 16]);
    }
}

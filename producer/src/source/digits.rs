//! The frame number drawn large: decimal digits as blocky 7-segment glyphs.

use super::canvas::Canvas;

/// Segments lit per digit, bits a..g = 0..6 (a top, b top right, c bottom right, d bottom,
/// e bottom left, f top left, g middle).
const GLYPHS: [u8; 10] = [
    0b011_1111, // 0: abcdef
    0b000_0110, // 1: bc
    0b101_1011, // 2: abdeg
    0b100_1111, // 3: abcdg
    0b110_0110, // 4: bcfg
    0b110_1101, // 5: acdfg
    0b111_1101, // 6: acdefg
    0b000_0111, // 7: abc
    0b111_1111, // 8: abcdefg
    0b110_1111, // 9: abcdfg
];

/// Where and how big to draw a number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Left edge of the first digit.
    pub x: usize,
    /// Top edge of the digits.
    pub y: usize,
    /// Digit height; the width is half of it (less when the number must fit `max_width`).
    pub height: usize,
    /// The widest the whole number may be.
    pub max_width: usize,
}

/// Draws `n` in decimal with `colour` (B, G, R, X).
pub(crate) fn draw_number(canvas: &mut Canvas<'_>, n: u64, layout: Layout, colour: [u8; 4]) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Each digit takes `w` plus a gap of `w / 3`; shrink the width to fit `max_width`.
    let fit = layout.max_width * 3 / (len * 4).max(1);
    let w = (layout.height / 2).min(fit).max(1);
    let h = layout.height.max(1);
    let t = (w / 5).max(1);
    let advance = w + (w / 3).max(1);
    for (i, &digit) in digits[..len].iter().rev().enumerate() {
        draw_digit(
            canvas,
            digit,
            layout.x + i * advance,
            layout.y,
            (w, h, t),
            colour,
        );
    }
}

/// Draws one digit of `w` x `h` pixels with strokes `t` thick at (`x`, `y`).
fn draw_digit(
    canvas: &mut Canvas<'_>,
    digit: u8,
    x: usize,
    y: usize,
    (w, h, t): (usize, usize, usize),
    colour: [u8; 4],
) {
    let Some(&glyph) = GLYPHS.get(usize::from(digit)) else {
        return;
    };
    let mid = h / 2;
    let upper = mid + t.div_ceil(2);
    // (x, y, width, height) of segments a..g, relative to the digit's corner.
    let segments = [
        (0, 0, w, t),                         // a
        (w - t, 0, t, upper),                 // b
        (w - t, mid, t, h - mid),             // c
        (0, h - t, w, t),                     // d
        (0, mid, t, h - mid),                 // e
        (0, 0, t, upper),                     // f
        (0, mid.saturating_sub(t / 2), w, t), // g
    ];
    for (bit, &(sx, sy, sw, sh)) in segments.iter().enumerate() {
        if glyph & (1 << bit) != 0 {
            canvas.fill_rect(x + sx, y + sy, sw, sh, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `n` on a small canvas and returns, per digit cell, which segments are lit
    /// (sampled at each segment's centre).
    fn read_back(n: u64, digits: usize) -> Vec<u8> {
        let (cw, ch) = (digits * 16, 20);
        let mut buf = vec![0u8; cw * ch * 4];
        let layout = Layout {
            x: 0,
            y: 0,
            height: 20,
            max_width: cw,
        };
        draw_number(&mut Canvas::new(&mut buf, cw, ch), n, layout, [255; 4]);
        let lit = |x: usize, y: usize| buf[(y * cw + x) * 4] == 255;
        // w = 10, t = 2, advance = 13, mid = 10.
        (0..digits)
            .map(|i| {
                let x0 = i * 13;
                let centres = [(5, 0), (9, 5), (9, 15), (5, 19), (0, 15), (0, 5), (5, 9)];
                centres
                    .iter()
                    .enumerate()
                    .filter(|&(_, &(x, y))| lit(x0 + x, y))
                    .fold(0u8, |acc, (bit, _)| acc | 1 << bit)
            })
            .collect()
    }

    #[test]
    fn every_digit_lights_its_segments() {
        assert_eq!(
            read_back(1_234_567_890, 10),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 0].map(|d| GLYPHS[d])
        );
    }

    #[test]
    fn long_numbers_shrink_to_fit() {
        let (cw, ch) = (120, 20);
        let mut buf = vec![0u8; cw * ch * 4];
        let layout = Layout {
            x: 0,
            y: 0,
            height: 20,
            max_width: 60,
        };
        draw_number(
            &mut Canvas::new(&mut buf, cw, ch),
            u64::MAX,
            layout,
            [255; 4],
        );
        let lit_columns: Vec<usize> = (0..cw)
            .filter(|&x| (0..ch).any(|y| buf[(y * cw + x) * 4] == 255))
            .collect();
        assert!(!lit_columns.is_empty());
        assert!(lit_columns.iter().all(|&x| x < 60), "{lit_columns:?}");
    }
}

//! The sizes of the matrix, each a BGRA frame: 64 B is 4x4, 4 KiB 32x32, 64 KiB 128x128.
#![forbid(unsafe_code)]

use frame_vocab::{FrameFormat, PixelFormat};

/// One size of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// How the report names it.
    pub label: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Size {
    /// Bytes per frame (4 per pixel).
    pub fn bytes(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }

    /// The BGRA frame format of this size.
    pub fn format(&self) -> FrameFormat {
        FrameFormat::new(self.width, self.height, PixelFormat::Bgra)
            .expect("every matrix size is a valid BGRA format")
    }

    /// The size whose label is `label`.
    pub fn by_label(label: &str) -> Option<Size> {
        SIZES.iter().copied().find(|s| s.label == label)
    }
}

/// Every size of the matrix, smallest first.
pub const SIZES: [Size; 7] = [
    Size {
        label: "64 B",
        width: 4,
        height: 4,
    },
    Size {
        label: "4 KiB",
        width: 32,
        height: 32,
    },
    Size {
        label: "64 KiB",
        width: 128,
        height: 128,
    },
    Size {
        label: "640x480",
        width: 640,
        height: 480,
    },
    Size {
        label: "1280x720",
        width: 1280,
        height: 720,
    },
    Size {
        label: "1920x1080",
        width: 1920,
        height: 1080,
    },
    Size {
        label: "3840x2160",
        width: 3840,
        height: 2160,
    },
];

/// The fan-out stream's size.
pub const FANOUT_SIZE: Size = SIZES[5];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_what_their_labels_say() {
        let bytes: Vec<usize> = SIZES.iter().map(Size::bytes).collect();
        assert_eq!(
            bytes,
            [64, 4096, 65536, 1_228_800, 3_686_400, 8_294_400, 33_177_600]
        );
        for size in SIZES {
            assert_eq!(size.format().frame_bytes(), size.bytes(), "{}", size.label);
            assert_eq!(Size::by_label(size.label), Some(size));
        }
    }
}

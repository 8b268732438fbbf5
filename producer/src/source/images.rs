//! The `images:DIR` source: the PNG and JPEG files of a directory, in name order, looped.
//!
//! Every file is decoded once with the `image` crate (alpha is dropped), scaled once to the
//! stream size (`resize_exact` with a triangle filter: the picture is stretched to fill
//! the frame, aspect ratio not kept, so an image of any size is accepted) and converted
//! once to the stream format; `fill` then only copies. Hidden files (`.name`) and
//! subdirectories are skipped; any other file that does not decode as PNG or JPEG is an
//! error naming it, rather than being skipped silently.

use std::path::{Path, PathBuf};

use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat};
use image::RgbImage;
use image::imageops::FilterType;

use crate::source::{Filled, FrameSource, SourceError};
use frame_vocab::convert::Converter;

/// Loops the images of a directory.
#[derive(Debug)]
pub struct ImagesSource {
    dir: PathBuf,
    /// The decoded files at their own size, kept to rebuild `frames` on `set_format`.
    originals: Vec<(PathBuf, RgbImage)>,
    format: FrameFormat,
    /// Each image scaled and converted to `format`.
    frames: Vec<Vec<u8>>,
    next: usize,
}

impl ImagesSource {
    /// Decodes every image in `dir` and prepares it for `format`.
    pub fn open(dir: &Path, format: FrameFormat) -> Result<ImagesSource, SourceError> {
        let files = list_files(dir)?;
        if files.is_empty() {
            return Err(SourceError::ImagesEmpty {
                dir: dir.to_owned(),
            });
        }
        let mut originals = Vec::with_capacity(files.len());
        for path in files {
            let image = decode(&path)?;
            tracing::debug!(path = %path.display(), width = image.width(), height = image.height(), "image decoded");
            originals.push((path, image));
        }
        let frames = prepare(&originals, format)?;
        Ok(ImagesSource {
            dir: dir.to_owned(),
            originals,
            format,
            frames,
            next: 0,
        })
    }

    /// How many images the source loops over.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no images (never true for an opened source).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl FrameSource for ImagesSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        format!(
            "images {} ({} files) {}",
            self.dir.display(),
            self.frames.len(),
            self.format
        )
    }

    fn fill(&mut self, _seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        let Some(frame) = self.frames.get(self.next) else {
            return Ok(Filled::End);
        };
        if dst.len() != frame.len() {
            return Err(SourceError::FrameLength {
                format: self.format,
                expected: frame.len(),
                got: dst.len(),
            });
        }
        dst.copy_from_slice(frame);
        self.next = (self.next + 1) % self.frames.len();
        Ok(Filled::Frame { capture_ns: None })
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        self.frames = prepare(&self.originals, format)?;
        self.format = format;
        self.next %= self.frames.len().max(1);
        Ok(())
    }

    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(format!(
            "images {} has no test pattern to switch to {pattern}",
            self.dir.display()
        )))
    }
}

/// The non-hidden regular files of `dir` (symlinks followed), sorted by name.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let unreadable = |source| SourceError::ImagesDir {
        dir: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let metadata = std::fs::metadata(&path).map_err(|source| SourceError::Open {
            path: path.clone(),
            source,
        })?;
        if metadata.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Decodes one file, whatever its extension says, as RGB.
fn decode(path: &Path) -> Result<RgbImage, SourceError> {
    let reader = image::ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|source| SourceError::Open {
            path: path.to_owned(),
            source,
        })?;
    let image = reader.decode().map_err(|source| SourceError::ImageDecode {
        path: path.to_owned(),
        source,
    })?;
    Ok(image.into_rgb8())
}

/// Scales and converts every original to `format`.
fn prepare(
    originals: &[(PathBuf, RgbImage)],
    format: FrameFormat,
) -> Result<Vec<Vec<u8>>, SourceError> {
    let (w, h) = (format.width(), format.height());
    let rgb_format = format.with_pixel(PixelFormat::Rgb24).map_err(|source| {
        frame_vocab::ConvertError::Format {
            from: format,
            to: PixelFormat::Rgb24,
            source,
        }
    })?;
    let mut converter = Converter::new();
    let mut frames = Vec::with_capacity(originals.len());
    for (path, image) in originals {
        let scaled;
        let rgb = if image.dimensions() == (w, h) {
            image
        } else {
            tracing::debug!(path = %path.display(), from = ?image.dimensions(), to = ?(w, h), "scaling image");
            scaled = image::imageops::resize(image, w, h, FilterType::Triangle);
            &scaled
        };
        let mut frame = vec![0; format.frame_bytes()];
        converter.convert(rgb_format, rgb.as_raw(), format.pixel(), &mut frame)?;
        frames.push(frame);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb};
    use shm_frames::testing::TempDir;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb(rgb))
    }

    fn save(dir: &TempDir, name: &str, image: &RgbImage, format: ImageFormat) {
        image
            .save_with_format(dir.path().join(name), format)
            .unwrap();
    }

    fn frames(source: &mut ImagesSource, count: usize) -> Vec<Vec<u8>> {
        let mut dst = vec![0; source.format().frame_bytes()];
        (1..=count as u64)
            .map(|seq| {
                assert!(matches!(
                    source.fill(seq, &mut dst),
                    Ok(Filled::Frame { .. })
                ));
                dst.clone()
            })
            .collect()
    }

    #[test]
    fn loads_pngs_and_jpegs_in_name_order_and_loops() {
        let dir = TempDir::new("images");
        // A gradient at the stream size, saved as PNG, must come back exactly.
        let exact = RgbImage::from_fn(8, 6, |x, y| Rgb([x as u8 * 30, y as u8 * 40, 200]));
        save(&dir, "b-exact.png", &exact, ImageFormat::Png);
        save(
            &dir,
            "a-red.png",
            &solid(3, 5, [255, 0, 0]),
            ImageFormat::Png,
        );
        save(
            &dir,
            "c-green.jpg",
            &solid(16, 16, [0, 255, 0]),
            ImageFormat::Jpeg,
        );
        dir.write(".hidden", b"not an image, but hidden");
        std::fs::create_dir(dir.path().join("subdir")).unwrap();

        let format = FrameFormat::new(8, 6, PixelFormat::Bgra).unwrap();
        let mut source = ImagesSource::open(dir.path(), format).unwrap();
        assert_eq!(source.len(), 3);
        let got = frames(&mut source, 7);
        // a-red: scaled from 3x5, still pure red.
        assert!(got[0].chunks(4).all(|p| p == [0, 0, 255, 255]));
        // b-exact: bit-exact.
        let expected: Vec<u8> = exact
            .pixels()
            .flat_map(|Rgb([r, g, b])| [*b, *g, *r, 255])
            .collect();
        assert_eq!(got[1], expected);
        // c-green: JPEG, near pure green.
        assert!(
            got[2]
                .chunks(4)
                .all(|p| p[0] < 10 && p[1] > 245 && p[2] < 10)
        );
        // Looped.
        assert_eq!(got[3..6], got[0..3]);
        assert_eq!(got[6], got[0]);
    }

    #[test]
    fn set_format_rebuilds_from_the_originals() {
        let dir = TempDir::new("images");
        save(
            &dir,
            "white.png",
            &solid(10, 10, [255, 255, 255]),
            ImageFormat::Png,
        );
        let format = FrameFormat::new(4, 4, PixelFormat::Bgra).unwrap();
        let mut source = ImagesSource::open(dir.path(), format).unwrap();
        let i420 = FrameFormat::new(6, 2, PixelFormat::I420).unwrap();
        source.set_format(i420).unwrap();
        assert_eq!(source.format(), i420);
        let got = frames(&mut source, 1);
        assert_eq!(
            got[0],
            [235; 12]
                .iter()
                .chain(&[128; 6])
                .copied()
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            source.set_pattern(PatternKind::Bars),
            Err(SourceError::Unsupported(_))
        ));
    }

    #[test]
    fn a_file_that_does_not_decode_is_named() {
        for (name, bytes) in [
            ("notes.txt", &b"hello"[..]),
            ("broken.png", &b"\x89PNG\r\n\x1a\n garbage"[..]),
        ] {
            let dir = TempDir::new("images");
            save(&dir, "good.png", &solid(2, 2, [1, 2, 3]), ImageFormat::Png);
            dir.write(name, bytes);
            let format = FrameFormat::new(2, 2, PixelFormat::Rgb24).unwrap();
            let err = ImagesSource::open(dir.path(), format).unwrap_err();
            assert!(matches!(err, SourceError::ImageDecode { .. }), "{err:?}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn empty_and_missing_directories_are_errors() {
        let dir = TempDir::new("images");
        let format = FrameFormat::new(2, 2, PixelFormat::Rgb24).unwrap();
        let err = ImagesSource::open(dir.path(), format).unwrap_err();
        assert!(matches!(err, SourceError::ImagesEmpty { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));

        let missing = dir.path().join("missing");
        let err = ImagesSource::open(&missing, format).unwrap_err();
        assert!(matches!(err, SourceError::ImagesDir { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}

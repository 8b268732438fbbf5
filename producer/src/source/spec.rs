//! Choosing a source: the `--source` spec (`pattern`, `images:DIR`, `y4m:FILE`, `y4m:-`,
//! `raw:-`, `v4l2:/dev/videoN`), parsed into a [`SourceSpec`] and opened with
//! [`open_source`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use frame_vocab::FrameFormat;
use frame_vocab::PatternKind;

use crate::source::images::ImagesSource;
use crate::source::pattern::PatternSource;
use crate::source::raw::RawSource;
use crate::source::y4m::{Y4mInput, Y4mSource};
use crate::source::{FrameSource, SourceError};

/// The accepted `--source` forms, for help texts and errors.
pub const SOURCE_FORMS: &str = "pattern, images:DIR, y4m:FILE, y4m:-, raw:-, v4l2:/dev/videoN";

/// Where frames come from, as `--source` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// `pattern`: the test pattern (`--pattern` picks which).
    Pattern,
    /// `images:DIR`: the PNG/JPEG files of a directory, looped.
    Images(PathBuf),
    /// `y4m:FILE` or `y4m:-` (standard input).
    Y4m(Y4mInput),
    /// `raw:-`: raw frames of the stream format on standard input.
    RawStdin,
    /// `v4l2:/dev/videoN`: a camera (needs the `v4l2` cargo feature).
    V4l2(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = SourceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "pattern" {
            return Ok(SourceSpec::Pattern);
        }
        let Some((kind, arg)) = s.split_once(':') else {
            return Err(SourceSpecError::Unknown(s.to_owned()));
        };
        let missing =
            |what: &'static str, example: &'static str| SourceSpecError::MissingArgument {
                kind: kind.to_owned(),
                what,
                example,
            };
        match kind {
            "images" if arg.is_empty() => Err(missing("directory", "images:./frames")),
            "images" => Ok(SourceSpec::Images(arg.into())),
            "y4m" if arg.is_empty() => Err(missing("file or -", "y4m:clip.y4m or y4m:-")),
            "y4m" if arg == "-" => Ok(SourceSpec::Y4m(Y4mInput::Stdin)),
            "y4m" => Ok(SourceSpec::Y4m(Y4mInput::File(arg.into()))),
            "raw" if arg == "-" => Ok(SourceSpec::RawStdin),
            "raw" => Err(SourceSpecError::RawNotStdin(arg.to_owned())),
            "v4l2" if arg.is_empty() => Err(missing("device", "v4l2:/dev/video0")),
            "v4l2" => Ok(SourceSpec::V4l2(arg.into())),
            _ => Err(SourceSpecError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Pattern => f.write_str("pattern"),
            SourceSpec::Images(dir) => write!(f, "images:{}", dir.display()),
            SourceSpec::Y4m(Y4mInput::Stdin) => f.write_str("y4m:-"),
            SourceSpec::Y4m(Y4mInput::File(path)) => write!(f, "y4m:{}", path.display()),
            SourceSpec::RawStdin => f.write_str("raw:-"),
            SourceSpec::V4l2(device) => write!(f, "v4l2:{}", device.display()),
        }
    }
}

/// What the command line asked of a source besides where it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceOptions {
    /// The requested stream format (`--size`, `--format`). Sources whose format comes from
    /// their input (a Y4M file, a camera) use what they can of it and report the rest
    /// through [`FrameSource::format`].
    pub format: FrameFormat,
    /// Whether `--format` was given: only then is a Y4M file converted (and a YUYV camera
    /// not streamed as YUYV).
    pub pixel_explicit: bool,
    /// The test pattern (`--pattern`).
    pub pattern: PatternKind,
    /// `--loop`: restart a Y4M file at its end. Refused for standard input; the pattern,
    /// image directories and cameras never end anyway.
    pub looping: bool,
}

/// Opens the source `spec` names.
pub fn open_source(
    spec: &SourceSpec,
    options: &SourceOptions,
) -> Result<Box<dyn FrameSource>, SourceError> {
    let source: Box<dyn FrameSource> = match spec {
        SourceSpec::Pattern => Box::new(PatternSource::new(options.format, options.pattern)?),
        SourceSpec::Images(dir) => Box::new(ImagesSource::open(dir, options.format)?),
        SourceSpec::Y4m(input) => {
            let pixel = options.pixel_explicit.then_some(options.format.pixel());
            Box::new(Y4mSource::open(input.clone(), pixel, options.looping)?)
        }
        SourceSpec::RawStdin => {
            if options.looping {
                return Err(SourceError::Unsupported(
                    "--loop needs a file; raw:- reads standard input, which cannot be rewound"
                        .to_owned(),
                ));
            }
            Box::new(RawSource::stdin(options.format))
        }
        SourceSpec::V4l2(device) => open_camera(device, options)?,
    };
    tracing::debug!(source = %source.describe(), "source opened");
    Ok(source)
}

#[cfg(feature = "v4l2")]
fn open_camera(
    device: &std::path::Path,
    options: &SourceOptions,
) -> Result<Box<dyn FrameSource>, SourceError> {
    let source =
        crate::source::v4l2::V4l2Source::open(device, options.format, options.pixel_explicit)?;
    Ok(Box::new(source))
}

#[cfg(not(feature = "v4l2"))]
fn open_camera(
    device: &std::path::Path,
    _options: &SourceOptions,
) -> Result<Box<dyn FrameSource>, SourceError> {
    Err(SourceError::FeatureDisabled {
        spec: SourceSpec::V4l2(device.to_owned()).to_string(),
        feature: "v4l2",
    })
}

/// Why a `--source` string is not a source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceSpecError {
    /// Not one of the accepted forms.
    #[error("unknown source {0:?} (expected one of: {forms})", forms = SOURCE_FORMS)]
    Unknown(String),
    /// A form that needs an argument after the colon got none.
    #[error("{kind}: needs a {what} after the colon, e.g. {example}")]
    MissingArgument {
        kind: String,
        what: &'static str,
        example: &'static str,
    },
    /// `raw:` with anything but `-`.
    #[error(
        "raw:{0} is not a source: raw frames are read from standard input only (raw:-); \
         pipe a file in with `< FILE`"
    )]
    RawNotStdin(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Filled;
    use frame_vocab::PixelFormat;
    use shm_frames::testing::TempDir;

    #[test]
    fn parses_every_form() {
        let ok = [
            ("pattern", SourceSpec::Pattern),
            ("images:frames", SourceSpec::Images("frames".into())),
            ("images:/a:b", SourceSpec::Images("/a:b".into())),
            (
                "y4m:clip.y4m",
                SourceSpec::Y4m(Y4mInput::File("clip.y4m".into())),
            ),
            ("y4m:-", SourceSpec::Y4m(Y4mInput::Stdin)),
            ("raw:-", SourceSpec::RawStdin),
            ("v4l2:/dev/video0", SourceSpec::V4l2("/dev/video0".into())),
        ];
        for (text, spec) in ok {
            assert_eq!(text.parse::<SourceSpec>(), Ok(spec.clone()), "{text}");
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn rejects_everything_else() {
        let bad = [
            ("", "unknown"),
            ("camera", "unknown"),
            ("Pattern", "unknown"),
            ("pattern:moving", "unknown"),
            ("png:x", "unknown"),
            ("images:", "needs"),
            ("y4m:", "needs"),
            ("v4l2:", "needs"),
            ("raw:", "standard input"),
            ("raw:file.bin", "standard input"),
        ];
        for (text, expect) in bad {
            let err = text.parse::<SourceSpec>().unwrap_err();
            let message = err.to_string();
            assert!(message.contains(expect), "{text:?}: {message}");
        }
        let unknown = "camera".parse::<SourceSpec>().unwrap_err().to_string();
        assert!(unknown.contains(SOURCE_FORMS), "{unknown}");
    }

    fn options(format: FrameFormat) -> SourceOptions {
        SourceOptions {
            format,
            pixel_explicit: false,
            pattern: PatternKind::Moving,
            looping: false,
        }
    }

    #[test]
    fn opens_the_pattern_in_the_requested_format() {
        let format = FrameFormat::new(64, 32, PixelFormat::Rgb24).unwrap();
        let mut source = open_source(&SourceSpec::Pattern, &options(format)).unwrap();
        assert_eq!(source.format(), format);
        let mut frame = vec![0; format.frame_bytes()];
        assert!(matches!(
            source.fill(3, &mut frame),
            Ok(Filled::Frame { .. })
        ));
        assert_eq!(frame_vocab::verify(format, &frame, 3), Ok(()));
        source.set_pattern(PatternKind::Bars).unwrap();
        assert!(source.describe().contains("bars"));
    }

    #[test]
    fn a_y4m_file_sets_the_format_unless_one_is_given() {
        const PIXELS: [u8; 12] = [16, 32, 64, 128, 90, 240, 235, 17, 100, 110, 120, 130];
        let dir = TempDir::new("spec");
        let mut bytes = b"YUV4MPEG2 W4 H2 F25:1 C420\n".to_vec();
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&PIXELS);
        let path = dir.write("clip.y4m", &bytes);
        let spec: SourceSpec = format!("y4m:{}", path.display()).parse().unwrap();
        let requested = FrameFormat::new(1920, 1080, PixelFormat::Bgra).unwrap();

        let mut native = open_source(&spec, &options(requested)).unwrap();
        let i420 = FrameFormat::new(4, 2, PixelFormat::I420).unwrap();
        assert_eq!(native.format(), i420);
        assert_eq!(native.native_fps(), Some(25.0));
        let mut frame = vec![0; i420.frame_bytes()];
        assert!(matches!(
            native.fill(1, &mut frame),
            Ok(Filled::Frame { .. })
        ));
        assert_eq!(frame, PIXELS);
        assert!(matches!(native.fill(2, &mut frame), Ok(Filled::End)));

        let explicit = SourceOptions {
            pixel_explicit: true,
            looping: true,
            ..options(requested)
        };
        let converted = open_source(&spec, &explicit).unwrap();
        assert_eq!(
            converted.format(),
            i420.with_pixel(PixelFormat::Bgra).unwrap()
        );
    }

    #[test]
    fn stdin_sources_refuse_to_loop() {
        let format = FrameFormat::new(4, 4, PixelFormat::Bgra).unwrap();
        let looping = SourceOptions {
            looping: true,
            ..options(format)
        };
        for spec in [SourceSpec::RawStdin, SourceSpec::Y4m(Y4mInput::Stdin)] {
            let err = open_source(&spec, &looping).err().unwrap();
            assert!(err.to_string().contains("--loop"), "{spec}: {err}");
        }
    }

    #[test]
    fn images_and_raw_open_with_the_requested_format() {
        let dir = TempDir::new("spec");
        image::RgbImage::from_pixel(3, 3, image::Rgb([10, 20, 30]))
            .save_with_format(dir.path().join("one.png"), image::ImageFormat::Png)
            .unwrap();
        let format = FrameFormat::new(6, 4, PixelFormat::Yuyv).unwrap();
        let spec = SourceSpec::Images(dir.path().to_owned());
        let source = open_source(&spec, &options(format)).unwrap();
        assert_eq!(source.format(), format);
        let raw = open_source(&SourceSpec::RawStdin, &options(format)).unwrap();
        assert_eq!(raw.format(), format);
    }

    #[test]
    fn a_camera_that_cannot_open_is_an_error() {
        let format = FrameFormat::new(640, 480, PixelFormat::Bgra).unwrap();
        let spec = SourceSpec::V4l2("/dev/framepipe-no-such-video9".into());
        let err = open_source(&spec, &options(format)).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("/dev/framepipe-no-such-video9"), "{text}");
        if cfg!(feature = "v4l2") {
            assert!(matches!(err, SourceError::V4l2 { .. }), "{err:?}");
        } else {
            assert!(
                matches!(err, SourceError::FeatureDisabled { .. }),
                "{err:?}"
            );
        }
    }
}

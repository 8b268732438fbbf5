//! Tests of the Y4M source: pass-through, conversion, looping, truncation, bad headers.

use super::*;
use shm_frames::testing::TempDir;
use std::io::Cursor;

/// A Y4M clip written with the `y4m` crate's encoder, and its frames.
fn clip(w: u32, h: u32, colorspace: ::y4m::Colorspace, count: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mono = matches!(colorspace, ::y4m::Colorspace::Cmono);
    let luma = (w * h) as usize;
    let chroma = if mono { 0 } else { luma / 4 };
    let frames: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            (0..luma + 2 * chroma)
                .map(|b| (b * 31 + i * 7) as u8)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = ::y4m::encode(w as usize, h as usize, ::y4m::Ratio::new(30000, 1001))
            .with_colorspace(colorspace)
            .write_header(&mut out)
            .unwrap();
        for frame in &frames {
            let (y, rest) = frame.split_at(luma);
            let (u, v) = rest.split_at(chroma);
            encoder
                .write_frame(&::y4m::Frame::new([y, u, v], None))
                .unwrap();
        }
    }
    (out, frames)
}

fn stdin_source(bytes: Vec<u8>, pixel: Option<PixelFormat>) -> Result<Y4mSource, SourceError> {
    Y4mSource::from_reader(Y4mInput::Stdin, Cursor::new(bytes), pixel, false)
}

fn read_all(source: &mut Y4mSource, max: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut dst = vec![0; source.format().frame_bytes()];
    for seq in 1..=max as u64 {
        match source.fill(seq, &mut dst).unwrap() {
            Filled::Frame { .. } => out.push(dst.clone()),
            Filled::End => break,
        }
    }
    out
}

#[test]
fn i420_frames_pass_through_bit_exact_then_end() {
    let (bytes, frames) = clip(16, 8, ::y4m::Colorspace::C420jpeg, 3);
    let mut source = stdin_source(bytes, None).unwrap();
    assert_eq!(
        source.format(),
        FrameFormat::new(16, 8, PixelFormat::I420).unwrap()
    );
    let fps = source.native_fps().unwrap();
    assert!((fps - 29.97).abs() < 0.01, "{fps}");
    assert_eq!(read_all(&mut source, 10), frames);
    let mut dst = vec![0; source.format().frame_bytes()];
    assert_eq!(source.fill(9, &mut dst).unwrap(), Filled::End);
}

#[test]
fn mono_is_gray8() {
    let (bytes, frames) = clip(6, 3, ::y4m::Colorspace::Cmono, 2);
    let mut source = stdin_source(bytes, None).unwrap();
    assert_eq!(
        source.format(),
        FrameFormat::new(6, 3, PixelFormat::Gray8).unwrap()
    );
    assert_eq!(read_all(&mut source, 10), frames);
}

#[test]
fn another_pixel_format_is_converted() {
    let (bytes, frames) = clip(8, 4, ::y4m::Colorspace::C420, 2);
    let mut source = stdin_source(bytes, Some(PixelFormat::Bgra)).unwrap();
    let file = FrameFormat::new(8, 4, PixelFormat::I420).unwrap();
    assert_eq!(source.file_format(), file);
    assert_eq!(source.format(), file.with_pixel(PixelFormat::Bgra).unwrap());
    let got = read_all(&mut source, 10);
    assert_eq!(got.len(), 2);
    let mut expected = vec![0; 8 * 4 * 4];
    frame_vocab::convert(file, &frames[1], PixelFormat::Bgra, &mut expected).unwrap();
    assert_eq!(got[1], expected);
    assert!(
        source.describe().contains("-> bgra"),
        "{}",
        source.describe()
    );
}

#[test]
fn a_file_loops_from_the_start() {
    let (bytes, frames) = clip(4, 2, ::y4m::Colorspace::C420, 3);
    let dir = TempDir::new("y4m");
    let input = Y4mInput::File(dir.write("clip.y4m", &bytes));
    let mut source = Y4mSource::open(input.clone(), None, true).unwrap();
    let got = read_all(&mut source, 7);
    let expected: Vec<Vec<u8>> = frames.iter().cycle().take(7).cloned().collect();
    assert_eq!(got, expected);
    // Without --loop the same file ends.
    let mut once = Y4mSource::open(input, None, false).unwrap();
    assert_eq!(read_all(&mut once, 7), frames);
}

#[test]
fn an_empty_clip_ends_even_when_looping() {
    let (bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 0);
    let dir = TempDir::new("y4m");
    let input = Y4mInput::File(dir.write("empty.y4m", &bytes));
    let mut source = Y4mSource::open(input, None, true).unwrap();
    assert!(read_all(&mut source, 3).is_empty());
}

#[test]
fn looping_stdin_is_refused() {
    let err = Y4mSource::open(Y4mInput::Stdin, None, true).unwrap_err();
    assert!(matches!(err, SourceError::Unsupported(_)), "{err}");
}

#[test]
fn unsupported_colour_spaces_are_named() {
    for cs in ["444", "422", "420p10", "mono12", "411"] {
        let bytes = format!("YUV4MPEG2 W4 H2 F25:1 C{cs}\nFRAME\n").into_bytes();
        let err = stdin_source(bytes, None).unwrap_err();
        match &err {
            SourceError::Y4mColorspace { colorspace, .. } if cs == "411" => {
                assert!(colorspace.contains("does not know"), "{colorspace}")
            }
            SourceError::Y4mColorspace { colorspace, .. } => {
                assert_eq!(colorspace, &format!("C{cs}"))
            }
            other => panic!("C{cs}: {other:?}"),
        }
        if cs != "411" {
            assert!(err.to_string().contains(&format!("C{cs}")), "{err}");
        }
    }
}

#[test]
fn a_truncated_frame_is_an_error_naming_it() {
    let (mut bytes, _) = clip(8, 4, ::y4m::Colorspace::C420, 3);
    bytes.truncate(bytes.len() - 5);
    let mut source = stdin_source(bytes, None).unwrap();
    let mut dst = vec![0; source.format().frame_bytes()];
    assert!(matches!(source.fill(1, &mut dst), Ok(Filled::Frame { .. })));
    assert!(matches!(source.fill(2, &mut dst), Ok(Filled::Frame { .. })));
    let err = source.fill(3, &mut dst).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::TruncatedY4m {
                frame: 3,
                got: 49,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("frame 3"), "{err}");
}

#[test]
fn a_cut_frame_header_is_truncation_too() {
    let (mut bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 1);
    bytes.extend_from_slice(b"FRA");
    let mut source = stdin_source(bytes, None).unwrap();
    let mut dst = vec![0; source.format().frame_bytes()];
    assert!(matches!(source.fill(1, &mut dst), Ok(Filled::Frame { .. })));
    assert!(matches!(
        source.fill(2, &mut dst),
        Err(SourceError::TruncatedY4m {
            frame: 2,
            got: 3,
            ..
        })
    ));
}

#[test]
fn bad_headers_are_errors() {
    let cases: [&[u8]; 4] = [
        b"",
        b"P6 4 4 255\n",
        b"YUV4MPEG2 W4 F25:1\n",
        b"YUV4MPEG2 W3 H3 C420\n",
    ];
    for bytes in cases {
        let err = stdin_source(bytes.to_vec(), None).unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::Y4mDecoder { .. } | SourceError::Y4mFormat { .. }
            ),
            "{:?}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let err =
        Y4mSource::open(Y4mInput::File("/nonexistent/clip.y4m".into()), None, false).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/clip.y4m"), "{err}");
}

#[test]
fn the_format_cannot_be_switched() {
    let (bytes, _) = clip(4, 2, ::y4m::Colorspace::C420, 1);
    let mut source = stdin_source(bytes, None).unwrap();
    let other = FrameFormat::new(8, 8, PixelFormat::Bgra).unwrap();
    assert!(matches!(
        source.set_format(other),
        Err(SourceError::Unsupported(_))
    ));
    assert!(matches!(
        source.set_pattern(PatternKind::Moving),
        Err(SourceError::Unsupported(_))
    ));
}

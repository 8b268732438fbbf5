//! The producer's command line (clap derive): raw arguments in, a validated [`Config`] out.
//!
//! The binary parses; this module only declares the arguments and checks them, so the
//! consumer's `demo` can embed the same arguments in its hidden producer subcommand.

use std::time::Duration;

use clap::Args;
use control_msg::MAX_FPS;
use frame_vocab::PatternKind;
use frame_vocab::{DEFAULT_STREAM, FormatError, FrameFormat, PixelFormat, STREAM_ENV, StreamName};
use shm_frames::MAX_SEATS;

use crate::config::Config;
use crate::source::spec::SourceSpec;

/// Examples shown at the end of `producer --help`.
pub const EXAMPLES: &str = "\
Examples:
  producer                                   1920x1080 bgra test pattern at 60 fps on cam0
  producer --size 640x480 --fps 0            as fast as possible
  producer --pattern bars --seats 3          static bars, up to 3 consumers
  producer --source y4m:clip.y4m --loop      play a Y4M file at its own rate, looped
  ffmpeg -i in.mp4 -f yuv4mpegpipe - | producer --source y4m:-
  ffmpeg -i in.mp4 -f rawvideo -pix_fmt bgr0 -s 1280x720 - | producer --source raw:- --size 1280x720
  producer --source v4l2:/dev/video0         a real camera (build with --features v4l2)
  producer --source raw:- --fps 0 --stall-timeout none < clip.bgra
                                             every frame to `consumer pipe --every-frame`,
                                             however long each one takes
  producer --no-backpressure                 a live camera that never waits for anyone";

/// The producer's arguments.
#[derive(Args, Clone, Debug)]
pub struct ProducerArgs {
    /// Stream name ([A-Za-z0-9_-]{1,32}).
    #[arg(long, env = STREAM_ENV, default_value = DEFAULT_STREAM, value_parser = StreamName::new)]
    pub stream: StreamName,

    /// Frame size, WIDTHxHEIGHT (a file source brings its own).
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),

    /// Frames per second; 0 = as fast as the source gives frames [default: the file's own
    /// rate, else 60].
    #[arg(long, allow_negative_numbers = true)]
    pub fps: Option<f64>,

    /// Pixel format [default: bgra, or a file's own].
    #[arg(long, value_parser = clap::builder::ValueParser::new(parse_pixel))]
    pub format: Option<PixelFormat>,

    /// Consumer seats: how many consumers may read at once (1..=16).
    #[arg(long, default_value_t = 1)]
    pub seats: u32,

    /// Permissions of the stream's objects, octal (0660 shares with the group).
    #[arg(long, default_value = "0600", value_parser = parse_mode)]
    pub mode: u32,

    /// Frame source: pattern, images:DIR, y4m:FILE, y4m:-, raw:-, v4l2:/dev/videoN.
    #[arg(long, default_value = "pattern", value_parser = clap::builder::ValueParser::new(parse_source))]
    pub source: SourceSpec,

    /// Test pattern for --source pattern: moving (verifiable) or bars (static).
    #[arg(long, default_value = "moving", value_parser = clap::builder::ValueParser::new(parse_pattern))]
    pub pattern: PatternKind,

    /// Stop after N frames.
    #[arg(long)]
    pub frames: Option<u64>,

    /// Loop a file source when it ends.
    #[arg(long = "loop")]
    pub looping: bool,

    /// Publish nothing until N consumers sit live (so they all see frame 1).
    #[arg(long, value_name = "N")]
    pub wait_seats: Option<u32>,

    /// How long --wait-seats waits for its consumers (e.g. 500ms, 5s, 2m); then it is an
    /// error (exit code 4).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait: Duration,

    /// How long an every-frame consumer may take nothing (counted from the publish of the
    /// frame it has not taken) before it is dropped back to newest-frame delivery, e.g.
    /// 500ms, 2s; `none` waits for it as long as it lives.
    #[arg(long, default_value = "2s", value_parser = parse_stall_timeout)]
    pub stall_timeout: StallTimeout,

    /// Never wait for any consumer: every-frame consumers are refused (a live camera that
    /// must keep its own rate).
    #[arg(long)]
    pub no_backpressure: bool,
}

/// `--stall-timeout`: a duration, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallTimeout(pub Option<Duration>);

fn parse_stall_timeout(s: &str) -> Result<StallTimeout, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(StallTimeout(None));
    }
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("0 would drop every consumer at once: use a duration \
                                     such as 2s, or none"
            .to_owned()),
        Ok(d) => Ok(StallTimeout(Some(d))),
        Err(e) => Err(format!("{e}: use a duration such as 500ms or 2s, or none")),
    }
}

/// An argument that parses but makes no valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Size and pixel format do not make a frame.
    #[error("invalid --size/--format")]
    Format(#[source] FormatError),
    /// fps out of range.
    #[error("--fps {0} is out of range: use 0 (as fast as possible) to {MAX_FPS}")]
    Fps(f64),
    /// seats out of range.
    #[error("--seats {0} is out of range: use 1 to {MAX_SEATS}")]
    Seats(u32),
    /// --loop on a source that cannot rewind.
    #[error("--loop needs a file: standard input cannot be rewound")]
    Loop,
    /// --frames 0.
    #[error("--frames must be at least 1")]
    Frames,
    /// --wait-seats out of range.
    #[error("--wait-seats {wanted} is out of range: use 1 to --seats ({seats})")]
    WaitSeats { wanted: u32, seats: u32 },
}

impl ProducerArgs {
    /// Validates the arguments into a [`Config`]; nothing is created yet.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let pixel = self.format.unwrap_or_default();
        let format =
            FrameFormat::new(self.size.0, self.size.1, pixel).map_err(ConfigError::Format)?;
        if let Some(fps) = self.fps {
            if !control_msg::valid_fps(fps) {
                return Err(ConfigError::Fps(fps));
            }
        }
        if self.seats == 0 || self.seats as usize > MAX_SEATS {
            return Err(ConfigError::Seats(self.seats));
        }
        let rewindable = !matches!(
            self.source,
            SourceSpec::RawStdin | SourceSpec::Y4m(crate::source::y4m::Y4mInput::Stdin)
        );
        if self.looping && !rewindable {
            return Err(ConfigError::Loop);
        }
        if self.frames == Some(0) {
            return Err(ConfigError::Frames);
        }
        if let Some(wanted) = self.wait_seats {
            if wanted == 0 || wanted > self.seats {
                return Err(ConfigError::WaitSeats {
                    wanted,
                    seats: self.seats,
                });
            }
        }
        Ok(Config {
            stream: self.stream.clone(),
            format,
            pixel_explicit: self.format.is_some(),
            fps: self.fps,
            seats: self.seats,
            mode: self.mode,
            source: self.source.clone(),
            pattern: self.pattern,
            frames: self.frames,
            looping: self.looping,
            wait_seats: self.wait_seats,
            wait: self.wait,
            stall_timeout: self.stall_timeout.0,
            no_backpressure: self.no_backpressure,
        })
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a size: use WIDTHxHEIGHT, e.g. 1920x1080");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

fn parse_pixel(s: &str) -> Result<PixelFormat, String> {
    s.parse()
        .map_err(|e: frame_vocab::UnknownPixelFormat| e.to_string())
}

fn parse_pattern(s: &str) -> Result<PatternKind, String> {
    s.parse()
        .map_err(|e: frame_vocab::UnknownPattern| e.to_string())
}

fn parse_source(s: &str) -> Result<SourceSpec, String> {
    s.parse().map_err(|e: crate::SourceSpecError| e.to_string())
}

/// Only private (0600) or shared with the group (0660): a stream readable or writable by
/// every user would let anyone spoof or read it.
fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(mode) if frame_vocab::access::MODES.contains(&mode) => Ok(mode),
        _ => Err(format!(
            "{s:?} is not an accepted permission mode: use 0600 (this user only) or 0660 \
             (shared with the group)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ProducerArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("producer").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.config().map_err(|e| e.to_string())
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.format,
            FrameFormat::new(1920, 1080, PixelFormat::Bgra).unwrap()
        );
        assert_eq!(
            (c.fps, c.seats, c.mode, c.pattern),
            (None, 1, 0o600, PatternKind::Moving)
        );
        assert!(!c.pixel_explicit);
    }

    #[test]
    fn bad_values_get_clear_errors() {
        for (args, needle) in [
            (&["--size", "0x0"][..], "invalid --size"),
            (&["--size", "640"], "not a size"),
            (&["--size", "16385x2"], "invalid --size"),
            (&["--fps", "-1"], "out of range"),
            (&["--fps", "nan"], "out of range"),
            (&["--seats", "0"], "--seats 0"),
            (&["--seats", "17"], "--seats 17"),
            (&["--mode", "999"], "permission mode"),
            (&["--mode", "0666"], "permission mode"),
            (&["--mode", "0640"], "permission mode"),
            (&["--stream", "a/b"], "invalid stream name"),
            (&["--format", "nv12"], "unknown pixel format"),
            (&["--format", "i420", "--size", "641x480"], "invalid --size"),
            (&["--pattern", "plaid"], "unknown pattern"),
            (&["--frames", "0"], "at least 1"),
            (&["--wait-seats", "2"], "--wait-seats 2"),
            (&["--wait-seats", "0"], "--wait-seats 0"),
            (&["--loop", "--source", "raw:-"], "--loop needs a file"),
            (&["--loop", "--source", "y4m:-"], "--loop needs a file"),
            (&["--source", "raw:x"], "raw"),
            (&["--source", "webcam"], "webcam"),
            (&["--stall-timeout", "0s"], "drop every consumer at once"),
            (&["--stall-timeout", "soon"], "or none"),
            (&["--stall-timeout=-1s"], "or none"),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} must fail"));
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn delivery_options() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.stall_timeout, Some(shm_frames::DEFAULT_STALL_TIMEOUT));
        assert!(!c.no_backpressure);
        let c = parse(&["--stall-timeout", "none", "--no-backpressure"]).unwrap();
        assert_eq!(c.stall_timeout, None);
        assert!(c.no_backpressure);
        let c = parse(&["--stall-timeout", "NONE"]).unwrap();
        assert_eq!(c.stall_timeout, None);
        let c = parse(&["--stall-timeout", "750ms"]).unwrap();
        assert_eq!(c.stall_timeout, Some(Duration::from_millis(750)));
    }

    #[test]
    fn good_values() {
        let c = parse(&[
            "--size",
            "640x480",
            "--fps",
            "0",
            "--format",
            "yuyv",
            "--seats",
            "3",
            "--mode",
            "0660",
            "--stream",
            "x_1-2",
            "--pattern",
            "bars",
            "--frames",
            "5",
        ])
        .unwrap();
        assert_eq!(
            c.format,
            FrameFormat::new(640, 480, PixelFormat::Yuyv).unwrap()
        );
        assert_eq!((c.fps, c.seats, c.mode), (Some(0.0), 3, 0o660));
        assert_eq!(
            (c.pattern, c.frames, c.pixel_explicit),
            (PatternKind::Bars, Some(5), true)
        );
        assert_eq!(c.stream.as_str(), "x_1-2");
    }
}

//! The command line: clap arguments, validated into a [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use consumer::record::RecordOptions;
use consumer::stats::{Limit, StatsOptions};
use consumer::view::ViewOptions;
use consumer::y4m::Rate;
use consumer::{Attach, parse_duration};
use frame_vocab::{FrameFormat, PixelFormat, STREAM_ENV, StreamName};
use shm_frames::{Delivery, SpinBudget, WaitStrategy};

const EXAMPLES: &str = "\
Examples:
  consumer demo                                  start a producer and watch it (no display: stats)
  consumer view                                  watch stream cam0 (start `producer` first)
  consumer view --stream cam1 --wait 1m          wait up to a minute for cam1's producer
  consumer stats --duration 10s --json           measure for 10 s, one JSON object on stdout
  consumer stats --frames 1000 --verify          check 1000 frames of the moving pattern
  consumer record clip.y4m                       record until the producer stops (or Ctrl-C)
  consumer record - --frames 250 | ffmpeg -i - clip.mp4
  consumer pipe | ffplay -f rawvideo -pixel_format bgr0 -video_size 1920x1080 -
  consumer snapshot frame.png
  producer --source raw:- --fps 0 < clip.bgra & consumer pipe --every-frame > copy.bgra
                                                 every frame of a clip, none skipped
  consumer list                                  every stream of this user, with its state and fps
  consumer info --stream cam0                    one stream in detail (layout, seats, source)
  consumer ctl format 640x480                    change the stream's size live (viewers follow)
  consumer ctl ping --count 5                    round trips to the producer, like ping(8)
  consumer meta --json --frames 100              the per-frame metadata, one JSON line per frame

Exit codes: 0 ok, 1 error, 2 usage, 3 no producer, 4 timeout, 130 interrupted.
Logs go to stderr (RUST_LOG=debug for more).";

/// Watch, measure and record a framepipe stream.
#[derive(Debug, Parser)]
#[command(name = "consumer", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Cmd,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Common {
    /// The stream's name (default cam0; `demo` makes its own).
    #[arg(long, global = true, env = STREAM_ENV, value_name = "NAME")]
    stream: Option<StreamName>,
    /// How long to wait for a producer, at start and after it goes (e.g. 500ms, 5s, 2m; a
    /// bare number is seconds). Every failure to attach is retried until then.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration, value_name = "D")]
    wait: Duration,
    /// How to wait for each frame.
    #[arg(long, global = true, value_enum, default_value_t = Strategy::Block)]
    strategy: Strategy,
    /// How long spin-then-block spins before it blocks.
    #[arg(long, global = true, default_value = "1ms", value_parser = parse_duration, value_name = "D")]
    spin_for: Duration,
    /// The share of a core `predict` may spend spinning, 0% to 100% (0%: it blocks).
    #[arg(long, global = true, default_value = "5%", value_parser = parse_budget, value_name = "P%")]
    spin_budget: SpinBudget,
    /// More logs on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// How a consumer waits for a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Strategy {
    /// Sleep on the seat's semaphore (no CPU while waiting).
    Block,
    /// Busy-poll (lowest latency; burns a core).
    Spin,
    /// Spin for --spin-for, then block.
    SpinThenBlock,
    /// Sleep until just before the next frame is due, spin across its window, then block
    /// (spins at most --spin-budget of a core; an irregular stream is waited for as block).
    Predict,
}

/// A spin budget: a percentage of one core, `5%` or `5`.
fn parse_budget(text: &str) -> Result<SpinBudget, String> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
    number
        .parse::<f64>()
        .ok()
        .and_then(SpinBudget::from_percent)
        .ok_or_else(|| format!("{text:?} is not a share of a core (use 0% to 100%, e.g. 5%)"))
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show the stream in a window (keys: space pause, s snapshot, +/- fps, q/Esc quit).
    #[command(
        after_help = "Examples:\n  consumer view\n  consumer view --stream cam1 --wait 1m\n  xvfb-run consumer view --duration 10s"
    )]
    View {
        /// Close the window after this long.
        #[arg(long, value_parser = parse_duration, value_name = "D")]
        duration: Option<Duration>,
        /// Where the s key saves snapshots.
        #[arg(long, default_value = ".", value_name = "DIR")]
        snapshot_dir: PathBuf,
    },
    /// Measure fps, skipped/torn frames and latency without a window.
    #[command(
        after_help = "Examples:\n  consumer stats --duration 10s --json\n  consumer stats --frames 1000 --verify"
    )]
    Stats {
        /// Stop after this long.
        #[arg(long, value_parser = parse_duration, value_name = "D", conflicts_with = "frames")]
        duration: Option<Duration>,
        /// Stop after this many frames.
        #[arg(long, value_name = "N")]
        frames: Option<u64>,
        /// Print the summary as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Verify each frame of the moving test pattern (failures count as torn).
        #[arg(long)]
        verify: bool,
        /// Every frame, not only the newest: the producer waits for this consumer (up to
        /// its --stall-timeout; then this consumer is dropped back to newest-frame).
        #[arg(long)]
        every_frame: bool,
    },
    /// Record the stream as Y4M (i420 passes through bit-exact; others become 4:2:0).
    /// A format change ends the file cleanly, with a message (Y4M has one size).
    #[command(
        after_help = "Examples:\n  consumer record clip.y4m\n  consumer record - --frames 250 | ffmpeg -i - clip.mp4"
    )]
    Record {
        /// The file to write, or - for stdout.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
        /// The frame rate written in the header (default: measured from the stream).
        #[arg(long, value_name = "FPS")]
        fps: Option<f64>,
        /// Stop after this many frames.
        #[arg(long, value_name = "N")]
        frames: Option<u64>,
        /// Every frame, not only the newest: the producer waits for this consumer (up to
        /// its --stall-timeout; then this consumer is dropped back to newest-frame,
        /// and the recording ends there with exit code 1).
        #[arg(long)]
        every_frame: bool,
    },
    /// Write raw frames of the stream format to stdout, back to back.
    #[command(
        after_help = "Examples:\n  consumer pipe | ffplay -f rawvideo -pixel_format bgr0 -video_size 1920x1080 -\n  consumer pipe --frames 10 > frames.raw"
    )]
    Pipe {
        /// Stop after this many frames.
        #[arg(long, value_name = "N")]
        frames: Option<u64>,
        /// Every frame, not only the newest: the producer waits for this consumer (up to
        /// its --stall-timeout; then this consumer is dropped back to newest-frame,
        /// and the pipe ends there with exit code 1).
        #[arg(long)]
        every_frame: bool,
    },
    /// Save one frame as PNG.
    #[command(
        after_help = "Examples:\n  consumer snapshot frame.png\n  consumer snapshot --stream cam1 --wait 10s cam1.png"
    )]
    Snapshot {
        /// The PNG file to write.
        #[arg(value_name = "FILE.png")]
        file: PathBuf,
    },
    /// List every stream of this user on the machine (read-only: takes no lock, no seat).
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// One JSON object per stream, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one stream in detail: layout, seats, source (read-only: no lock, no seat).
    #[command(after_help = INFO_EXAMPLES)]
    Info {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Send a command to the stream's producer and wait for its answer (takes no seat).
    #[command(after_help = CTL_EXAMPLES)]
    Ctl {
        /// How long to wait for each answer.
        #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "D")]
        timeout: Duration,
        #[command(subcommand)]
        command: CtlCmd,
    },
    /// Print the per-frame metadata (seq, timestamps, format, flags), one line per frame,
    /// including frames the pixel path skips; takes a seat but never a frame.
    #[command(after_help = META_EXAMPLES)]
    Meta {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Stop after this many frames.
        #[arg(long, value_name = "N")]
        frames: Option<u64>,
    },
    /// Start a producer (in a child process) and view its stream; no display: stats.
    #[command(
        after_help = "Examples:\n  consumer demo\n  consumer demo --size 1920x1080 --fps 30\n  consumer demo --headless-for 10s"
    )]
    Demo {
        /// Frame size of the demo stream.
        #[arg(long, default_value = "1280x720", value_name = "WxH")]
        size: String,
        /// Frame rate of the demo stream (0: as fast as it renders).
        #[arg(long, default_value_t = 60.0)]
        fps: f64,
        /// With no display, how long to measure instead.
        #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "D")]
        headless_for: Duration,
    },
}

const LIST_EXAMPLES: &str = "\
Examples:
  consumer list
  consumer list --json | jq -r 'select(.state == \"leftover\") | .name'

STATE is live, stalled (heartbeat older than 1 s), stopping, replaced, leftover (its
producer is gone; the next producer of the name replaces it), starting or garbage.";

const INFO_EXAMPLES: &str = "\
Examples:
  consumer info                      stream cam0 (or $FRAMEPIPE_STREAM)
  consumer info --stream cam1 --json

Exit codes: 0 ok, 1 error (e.g. another user's object), 3 no such stream.";

const CTL_EXAMPLES: &str = "\
Examples:
  consumer ctl pause                 done once the producer has parked: no further frame follows
  consumer ctl resume
  consumer ctl fps 30                0: as fast as the source gives (refused for a camera)
  consumer ctl format 640x480        keep the pixel format; viewers and stats follow
  consumer ctl format 1280x720:i420  pixel formats: bgra, rgb24, gray8, yuyv, i420
  consumer ctl pattern bars
  consumer ctl ping --count 100 --interval 0
  consumer ctl shutdown

While paused, fps, pattern and format are refused (pause, resume, ping and shutdown work).
Exit codes: 0 done, 1 refused or error, 2 usage (e.g. format 0x0), 3 no producer,
4 no answer within --timeout.";

const META_EXAMPLES: &str = "\
Examples:
  consumer meta --frames 10
  consumer meta --json | jq .publish_ns

The queue holds 10 messages: where seqs jump, one {\"dropped\": k} line says how many.";

/// A command for the producer.
#[derive(Debug, Subcommand)]
enum CtlCmd {
    /// Stop publishing (the heartbeat goes on); done once no further frame follows.
    #[command(after_help = CTL_EXAMPLES)]
    Pause,
    /// Publish again.
    #[command(after_help = CTL_EXAMPLES)]
    Resume,
    /// Change the frame rate (0: as fast as the source gives frames).
    #[command(after_help = CTL_EXAMPLES)]
    Fps {
        /// Frames per second.
        #[arg(value_name = "N")]
        fps: f64,
    },
    /// Change the frame format live (the producer makes a new region, epoch + 1).
    #[command(after_help = CTL_EXAMPLES)]
    Format {
        /// WIDTHxHEIGHT, optionally :PIXFMT (bgra, rgb24, gray8, yuyv, i420).
        #[arg(value_name = "WxH[:PIXFMT]")]
        format: String,
    },
    /// Switch the test pattern.
    #[command(after_help = CTL_EXAMPLES)]
    Pattern {
        /// moving or bars.
        #[arg(value_name = "moving|bars")]
        pattern: frame_vocab::PatternKind,
    },
    /// Round trips to the producer, like ping(8).
    #[command(after_help = CTL_EXAMPLES)]
    Ping {
        /// How many requests.
        #[arg(long, short, default_value_t = 1, value_name = "N")]
        count: u64,
        /// The pause between requests (0: back to back).
        #[arg(long, short, default_value = "0", value_parser = parse_duration, value_name = "D")]
        interval: Duration,
    },
    /// Stop the producer cleanly.
    #[command(after_help = CTL_EXAMPLES)]
    Shutdown,
}

/// A `ctl` command, validated as far as it can be without the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum CtlCommand {
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// SetFps.
    Fps(f64),
    /// SetFormat; `None` pixel: the stream's own.
    Format {
        width: u32,
        height: u32,
        pixel: Option<PixelFormat>,
    },
    /// SetPattern.
    Pattern(frame_vocab::PatternKind),
    /// Ping.
    Ping { count: u64, interval: Duration },
    /// Shutdown.
    Shutdown,
}

/// Parses `WxH[:PIXFMT]` and checks the size (with the pixel format when given; else with
/// bgra, which every size valid for any format also is).
pub fn parse_format(text: &str) -> Result<(u32, u32, Option<PixelFormat>), ConfigError> {
    let (size, pixel) = match text.split_once(':') {
        Some((size, pixel)) => (
            size,
            Some(
                pixel
                    .parse::<PixelFormat>()
                    .map_err(|_| ConfigError::UnknownPixel(pixel.to_owned()))?,
            ),
        ),
        None => (text, None),
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| ConfigError::BadFormat(text.to_owned()))?;
    FrameFormat::new(w, h, pixel.unwrap_or(PixelFormat::Bgra)).map_err(ConfigError::Format)?;
    Ok((w, h, pixel))
}

/// What to do, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to attach (for `demo`: the demo stream).
    pub attach: Attach,
    /// The command.
    pub command: Command,
    /// The default log filter (RUST_LOG overrides it).
    pub log_level: &'static str,
}

/// A validated command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    View(ViewOptions),
    Stats {
        options: StatsOptions,
        json: bool,
    },
    Record {
        path: PathBuf,
        options: RecordOptions,
    },
    Pipe {
        frames: Option<u64>,
    },
    Snapshot {
        path: PathBuf,
    },
    Demo {
        size: FrameFormat,
        fps: f64,
        headless_for: Duration,
    },
    List {
        json: bool,
    },
    Info {
        json: bool,
    },
    Ctl {
        command: CtlCommand,
        timeout: Duration,
    },
    Meta {
        json: bool,
        frames: Option<u64>,
    },
}

/// Arguments that parse but make no sense.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--frames must be at least 1")]
    ZeroFrames,
    #[error("--fps {0} is not a frame rate (use a number above 0, e.g. 25 or 29.97)")]
    BadRate(f64),
    #[error("--fps {0} is not a frame rate (use 0 for as fast as possible, or up to {max})", max = control_msg::MAX_FPS)]
    BadDemoFps(f64),
    #[error("--size {0:?} is not WIDTHxHEIGHT (e.g. 1280x720)")]
    BadSize(String),
    #[error("--size {0}")]
    Size(#[from] frame_vocab::FormatError),
    #[error("format {0:?} is not WIDTHxHEIGHT[:PIXFMT] (e.g. 640x480 or 1280x720:i420)")]
    BadFormat(String),
    #[error("format: {0}")]
    Format(frame_vocab::FormatError),
    #[error("unknown pixel format {0:?} (use bgra, rgb24, gray8, yuyv or i420)")]
    UnknownPixel(String),
    #[error("fps {0} is not a frame rate (use 0 for as fast as possible, or up to {max})", max = control_msg::MAX_FPS)]
    BadCtlFps(f64),
    #[error("--count must be at least 1")]
    ZeroCount,
}

impl Cli {
    /// Validates the arguments.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let common = self.common;
        let strategy = match common.strategy {
            Strategy::Block => WaitStrategy::Block,
            Strategy::Spin => WaitStrategy::Spin,
            Strategy::SpinThenBlock => WaitStrategy::SpinThenBlock(common.spin_for),
            Strategy::Predict => WaitStrategy::Predict {
                spin_budget: common.spin_budget,
            },
        };
        let frames = |n: Option<u64>| match n {
            Some(0) => Err(ConfigError::ZeroFrames),
            n => Ok(n),
        };
        let mut stream = common.stream;
        let mut delivery = Delivery::Newest;
        let mut every = |on: bool| {
            if on {
                delivery = Delivery::EveryFrame;
            }
        };
        let command = match self.command {
            Cmd::View {
                duration,
                snapshot_dir,
            } => Command::View(ViewOptions {
                snapshot_dir,
                duration,
            }),
            Cmd::Stats {
                duration,
                frames: n,
                json,
                verify,
                every_frame,
            } => {
                every(every_frame);
                let limit = match (duration, frames(n)?) {
                    (Some(d), _) => Limit::Duration(d),
                    (None, Some(n)) => Limit::Frames(n),
                    (None, None) => Limit::None,
                };
                Command::Stats {
                    options: StatsOptions { limit, verify },
                    json,
                }
            }
            Cmd::Record {
                file,
                fps,
                frames: n,
                every_frame,
            } => {
                every(every_frame);
                let rate = fps
                    .map(|fps| Rate::from_fps(fps).ok_or(ConfigError::BadRate(fps)))
                    .transpose()?;
                Command::Record {
                    path: file,
                    options: RecordOptions {
                        rate,
                        frames: frames(n)?,
                    },
                }
            }
            Cmd::Pipe {
                frames: n,
                every_frame,
            } => {
                every(every_frame);
                Command::Pipe { frames: frames(n)? }
            }
            Cmd::Snapshot { file } => Command::Snapshot { path: file },
            Cmd::List { json } => Command::List { json },
            Cmd::Info { json } => Command::Info { json },
            Cmd::Meta { json, frames: n } => Command::Meta {
                json,
                frames: frames(n)?,
            },
            Cmd::Ctl { timeout, command } => Command::Ctl {
                timeout,
                command: match command {
                    CtlCmd::Pause => CtlCommand::Pause,
                    CtlCmd::Resume => CtlCommand::Resume,
                    CtlCmd::Fps { fps } if !control_msg::valid_fps(fps) => {
                        return Err(ConfigError::BadCtlFps(fps));
                    }
                    CtlCmd::Fps { fps } => CtlCommand::Fps(fps),
                    CtlCmd::Format { format } => {
                        let (width, height, pixel) = parse_format(&format)?;
                        CtlCommand::Format {
                            width,
                            height,
                            pixel,
                        }
                    }
                    CtlCmd::Pattern { pattern } => CtlCommand::Pattern(pattern),
                    CtlCmd::Ping { count: 0, .. } => return Err(ConfigError::ZeroCount),
                    CtlCmd::Ping { count, interval } => CtlCommand::Ping { count, interval },
                    CtlCmd::Shutdown => CtlCommand::Shutdown,
                },
            },
            Cmd::Demo {
                size,
                fps,
                headless_for,
            } => {
                if !control_msg::valid_fps(fps) {
                    return Err(ConfigError::BadDemoFps(fps));
                }
                let (w, h) = size
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .ok_or_else(|| ConfigError::BadSize(size.clone()))?;
                let size = FrameFormat::new(w, h, PixelFormat::Bgra)?;
                if stream.is_none() {
                    let name = format!("demo-{}", std::process::id());
                    stream = StreamName::new(&name).ok();
                }
                Command::Demo {
                    size,
                    fps,
                    headless_for,
                }
            }
        };
        let log_level = match (common.quiet, common.verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        Ok(Config {
            attach: Attach {
                stream: stream.unwrap_or_default(),
                wait: common.wait,
                strategy,
                delivery,
            },
            command,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use frame_vocab::DEFAULT_STREAM;

    fn config(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("consumer").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        // The test process may have FRAMEPIPE_STREAM set; check the default only if not.
        let c = config(&["stats"]).unwrap();
        if std::env::var_os(STREAM_ENV).is_none() {
            assert_eq!(c.attach.stream.as_str(), DEFAULT_STREAM);
        }
        assert_eq!(c.attach.wait, Duration::from_secs(5));
        assert_eq!(c.attach.strategy, WaitStrategy::Block);
        assert_eq!(
            c.command,
            Command::Stats {
                options: StatsOptions::default(),
                json: false
            }
        );
        assert_eq!(c.log_level, "info");
    }

    #[test]
    fn common_options_on_every_command() {
        for cmd in [
            &["view"][..],
            &["stats"],
            &["record", "x.y4m"],
            &["pipe"],
            &["snapshot", "x.png"],
            &["demo"],
        ] {
            let mut args = cmd.to_vec();
            args.extend([
                "--stream",
                "cam7",
                "--wait",
                "500ms",
                "--strategy",
                "spin-then-block",
                "--spin-for",
                "2ms",
            ]);
            let c = config(&args).unwrap();
            assert_eq!(c.attach.stream.as_str(), "cam7", "{cmd:?}");
            assert_eq!(c.attach.wait, Duration::from_millis(500));
            assert_eq!(
                c.attach.strategy,
                WaitStrategy::SpinThenBlock(Duration::from_millis(2))
            );
        }
    }

    #[test]
    fn predict_and_its_spin_budget() {
        for cmd in [&["view"][..], &["stats"], &["pipe"], &["demo"]] {
            let mut args = cmd.to_vec();
            args.extend(["--strategy", "predict"]);
            let c = config(&args).unwrap();
            assert_eq!(c.attach.strategy, WaitStrategy::PREDICT, "{cmd:?}");
        }
        let budget = |b: &str| config(&["stats", "--strategy", "predict", "--spin-budget", b]);
        for (text, percent) in [("0", 0.0), ("0%", 0.0), ("2.5%", 2.5), ("100%", 100.0)] {
            let c = budget(text).unwrap();
            let WaitStrategy::Predict { spin_budget } = c.attach.strategy else {
                panic!("{:?}", c.attach.strategy)
            };
            assert_eq!(spin_budget.percent(), percent, "{text}");
        }
        for bad in ["101%", "101", "-1%", "lots", "5%%", "nan"] {
            assert!(budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_limits_and_flags() {
        let c = config(&["stats", "--duration", "2m", "--json", "--verify"]).unwrap();
        assert_eq!(
            c.command,
            Command::Stats {
                options: StatsOptions {
                    limit: Limit::Duration(Duration::from_secs(120)),
                    verify: true
                },
                json: true
            }
        );
        let c = config(&["stats", "--frames", "10", "-q"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Stats {
                options: StatsOptions {
                    limit: Limit::Frames(10),
                    ..
                },
                ..
            }
        ));
        assert_eq!(c.log_level, "warn");
        assert!(config(&["stats", "--frames", "10", "--duration", "1s"]).is_err());
        assert!(config(&["stats", "--frames", "0"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(config(&["stats", "--wait", "soon"]).is_err());
        assert!(config(&["stats", "--stream", "a/b"]).is_err());
        assert!(config(&["stats", "--strategy", "nap"]).is_err());
        assert!(config(&["record"]).is_err());
        assert!(config(&["record", "x.y4m", "--fps", "0"]).is_err());
        assert!(config(&["demo", "--size", "big"]).is_err());
        assert!(config(&["demo", "--size", "0x0"]).is_err());
        assert!(config(&["demo", "--fps", "-1"]).is_err());
        assert!(config(&["frobnicate"]).is_err());
        for bad in [
            "99999x1",
            "0x0",
            "640x480:rgb565",
            "640",
            "axb",
            "641x480:i420",
        ] {
            assert!(config(&["ctl", "format", bad]).is_err(), "{bad}");
        }
        assert!(config(&["ctl", "fps", "-1"]).is_err());
        assert!(config(&["ctl", "fps", "NaN"]).is_err());
        assert!(config(&["ctl", "pattern", "plaid"]).is_err());
        assert!(config(&["ctl", "ping", "--count", "0"]).is_err());
        assert!(config(&["ctl"]).is_err());
    }

    #[test]
    fn control_commands() {
        let c = config(&["ctl", "format", "640x480"]).unwrap();
        assert_eq!(
            c.command,
            Command::Ctl {
                command: CtlCommand::Format {
                    width: 640,
                    height: 480,
                    pixel: None
                },
                timeout: Duration::from_secs(2)
            }
        );
        let c = config(&["ctl", "--timeout", "1s", "format", "64x48:I420"]).unwrap();
        assert_eq!(
            c.command,
            Command::Ctl {
                command: CtlCommand::Format {
                    width: 64,
                    height: 48,
                    pixel: Some(PixelFormat::I420)
                },
                timeout: Duration::from_secs(1)
            }
        );
        let c = config(&["ctl", "ping", "-c", "3"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Ctl {
                command: CtlCommand::Ping { count: 3, .. },
                ..
            }
        ));
        let c = config(&["meta", "--json", "--frames", "5"]).unwrap();
        assert_eq!(
            c.command,
            Command::Meta {
                json: true,
                frames: Some(5)
            }
        );
        assert_eq!(
            config(&["list", "--json"]).unwrap().command,
            Command::List { json: true }
        );
        assert_eq!(
            config(&["info"]).unwrap().command,
            Command::Info { json: false }
        );
    }

    #[test]
    fn every_frame_is_asked_for_by_record_pipe_and_stats_only() {
        assert_eq!(
            config(&["stats"]).unwrap().attach.delivery,
            Delivery::Newest
        );
        for args in [
            &["stats", "--every-frame"][..],
            &["record", "out.y4m", "--every-frame"],
            &["pipe", "--every-frame"],
        ] {
            let c = config(args).unwrap();
            assert_eq!(c.attach.delivery, Delivery::EveryFrame, "{args:?}");
        }
        for args in [
            &["view", "--every-frame"][..],
            &["snapshot", "x.png", "--every-frame"],
        ] {
            assert!(config(args).is_err(), "{args:?} has no --every-frame");
        }
    }

    #[test]
    fn record_and_demo() {
        let c = config(&["record", "-", "--fps", "25", "--frames", "3"]).unwrap();
        assert_eq!(
            c.command,
            Command::Record {
                path: PathBuf::from("-"),
                options: RecordOptions {
                    rate: Some(Rate { num: 25, den: 1 }),
                    frames: Some(3)
                }
            }
        );
        let c = config(&["demo", "--stream", "mine"]).unwrap();
        assert_eq!(c.attach.stream.as_str(), "mine");
        if std::env::var_os(STREAM_ENV).is_none() {
            let c = config(&["demo"]).unwrap();
            assert_eq!(
                c.attach.stream.as_str(),
                format!("demo-{}", std::process::id())
            );
        }
    }
}

//! Fixtures of the consumer's integration tests, on top of shm-frames' `testing` ones
//! (unique stream names, temp dirs and child processes, all cleaned up on drop): the
//! `consumer` binary as a child, a scripted producer (the real `producer::run_with` in a
//! child process), ffmpeg clips, and an Xvfb display.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use clap::Parser;
use control_msg::{Command as Ctl, CommandSender, Sent};
use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat};
use producer::{Filled, FrameSource, PatternSource, SourceError};
use shm_frames::testing::{Output, env, env_or, say};

/// Deadline for events in tests: it only catches hangs.
pub const HANG: Duration = Duration::from_secs(60);

/// The consumer binary under test.
pub const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

// Shared with every crate's tests; not every test file uses all of them.
#[allow(unused_imports)]
pub use shm_frames::testing::{ChildProc, Finished, TempDir, TestStream};

/// `consumer args...` as a child (stdout taken as bytes); killed on drop.
pub fn spawn_consumer(args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(args);
    ChildProc::spawn_with(cmd, Output::Bytes)
}

/// Runs `consumer args...` to the end.
pub fn consumer(args: &[&str]) -> Finished {
    spawn_consumer(args).finish()
}

/// Waits for a line of `child`'s containing `needle`.
pub fn expect(child: &ChildProc, needle: &str) -> String {
    child.expect_contains(needle, HANG)
}

/// Where a scripted producer's frames come from.
#[derive(Clone, Debug)]
pub enum Frames {
    /// The producer's test pattern (`--pattern` picks it), which can switch format.
    Pattern,
    /// These frames, in order and looping (each exactly one frame of `--size`/`--format`).
    Clip(Vec<Vec<u8>>),
}

/// How a scripted producer runs: the real producer library (`producer::run_with`) in a
/// child process (this test binary re-executed as role `producer`), with producer command
/// line `args` and a [`Scripted`] source.
#[derive(Clone, Debug)]
pub struct Script {
    /// Producer options (`--size`, `--format`, `--fps`, `--seats`, `--frames`, `--pattern`).
    pub args: Vec<String>,
    pub frames: Frames,
    /// Publish nothing until [`Producer::go`] (e.g. until the consumers said Hello).
    pub gated: bool,
    /// The source says it paces itself, as a camera does.
    pub camera: bool,
    /// Every this many frames the source says "filled frame N" (0: never), so a test can
    /// wait for the stream to have reached a frame.
    pub report_every: u64,
}

impl Script {
    /// The test pattern of `format` at `fps` (0: as fast as it renders), ungated.
    pub fn pattern(format: FrameFormat, pattern: &str, fps: f64) -> Script {
        let args = format!(
            "--size {}x{} --format {} --fps {fps} --pattern {pattern}",
            format.width(),
            format.height(),
            format.pixel()
        );
        Script {
            args: args.split(' ').map(str::to_owned).collect(),
            frames: Frames::Pattern,
            gated: false,
            camera: false,
            report_every: 0,
        }
    }

    /// The same script, its source saying "filled frame N" every `frames` frames.
    pub fn reporting(mut self, frames: u64) -> Script {
        self.report_every = frames;
        self
    }

    /// The same script, its source acting as a camera (it paces itself).
    pub fn camera(mut self) -> Script {
        self.camera = true;
        self
    }

    /// The same script with more producer options.
    pub fn with(mut self, args: &[&str]) -> Script {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// The same script, gated.
    pub fn gated(mut self) -> Script {
        self.gated = true;
        self
    }
}

/// A scripted producer in a child process; killed on drop.
pub struct Producer {
    pub child: ChildProc,
    _clip: Option<TempDir>,
}

impl Producer {
    /// Starts `script` on `stream` and returns once the region exists (its "ready:" line).
    pub fn start(stream: &TestStream, script: &Script) -> Producer {
        let mut envs = vec![
            ("FP_STREAM", stream.as_str().to_owned()),
            ("FP_ARGS", script.args.join(" ")),
            ("FP_GATED", u8::from(script.gated).to_string()),
            ("FP_CAMERA", u8::from(script.camera).to_string()),
            ("FP_REPORT_EVERY", script.report_every.to_string()),
        ];
        let clip = match &script.frames {
            Frames::Pattern => None,
            Frames::Clip(frames) => {
                let dir = TempDir::new("clip");
                let path = dir.write("frames.raw", &frames.concat());
                envs.push(("FP_CLIP", path.display().to_string()));
                envs.push(("FP_CLIP_FRAMES", frames.len().to_string()));
                Some(dir)
            }
        };
        let child = ChildProc::role("producer", &envs);
        child.expect_contains("ready:", HANG);
        Producer { child, _clip: clip }
    }

    /// Waits for a line of the producer's log containing `needle`.
    pub fn expect(&self, needle: &str) -> String {
        self.child.expect_contains(needle, HANG)
    }

    /// Opens the gate of a gated script: frames flow from now on.
    pub fn go(&mut self) {
        self.child.send("go");
    }

    /// Asks the producer to stop (`Shutdown` on its command queue), waits for it to exit
    /// cleanly and returns the number of frames it published.
    pub fn shutdown(mut self, stream: &TestStream) -> u64 {
        // A gated source still waiting takes the closed stdin as its end.
        self.child.close_stdin();
        self.command(stream, &Ctl::Shutdown);
        let line = self.expect("stopped (");
        let status = self.child.reap();
        assert!(status.success(), "the producer role: {status}");
        line.split("): ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no frame count in {line:?}"))
    }

    /// Sends `command` on the stream's command queue.
    pub fn command(&self, stream: &TestStream, command: &Ctl) {
        let mut sender = CommandSender::open(&stream.name).expect("the command queue");
        assert_eq!(sender.send(command).unwrap(), Sent::Queued, "{command:?}");
    }
}

/// The entry point of the producer role: call it from a `#[test] fn __role_entry()` in each
/// test file that starts a [`Producer`]. Without `FP_ROLE` it returns at once.
pub fn role_entry() {
    let Ok(role) = std::env::var("FP_ROLE") else {
        return;
    };
    assert_eq!(role, "producer", "unknown role");
    // Never outlive the test that started us.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let (args, stream) = (env("FP_ARGS"), env("FP_STREAM"));
    let argv = ["producer", "--stream", &stream]
        .into_iter()
        .chain(args.split(' ').filter(|a| !a.is_empty()));
    let config = ProducerCli::parse_from(argv)
        .args
        .config()
        .expect("a valid config");
    let source = Scripted::new(&config);
    let summary = producer::run_with(&config, Box::new(source)).expect("the producer's run");
    say(format!("summary {} frames", summary.frames));
    std::process::exit(0);
}

/// The producer's command line, as the role takes it.
#[derive(clap::Parser)]
struct ProducerCli {
    #[command(flatten)]
    args: producer::ProducerArgs,
}

/// The role's source: the pattern or a clip, optionally held back until the parent says
/// "go" on stdin. It reports format and pattern switches on stdout.
struct Scripted {
    format: FrameFormat,
    pattern: Option<PatternSource>,
    clip: Vec<Vec<u8>>,
    gated: bool,
    camera: bool,
    report_every: u64,
    next: usize,
}

impl Scripted {
    fn new(config: &producer::Config) -> Scripted {
        let (pattern, clip) = match std::env::var("FP_CLIP") {
            Ok(path) => {
                let bytes = std::fs::read(path).expect("the clip");
                let count: usize = env("FP_CLIP_FRAMES").parse().unwrap();
                let size = bytes.len() / count.max(1);
                (
                    None,
                    bytes.chunks(size.max(1)).map(<[u8]>::to_vec).collect(),
                )
            }
            Err(_) => (
                Some(PatternSource::new(config.format, config.pattern).expect("a pattern")),
                Vec::new(),
            ),
        };
        Scripted {
            format: config.format,
            pattern,
            clip,
            gated: env_or("FP_GATED", "0") == "1",
            camera: env_or("FP_CAMERA", "0") == "1",
            report_every: env_or("FP_REPORT_EVERY", "0").parse().unwrap_or(0),
            next: 0,
        }
    }
}

impl FrameSource for Scripted {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn describe(&self) -> String {
        match &self.pattern {
            Some(pattern) => format!("scripted {}", pattern.describe()),
            None => format!("scripted clip of {} frames", self.clip.len()),
        }
    }

    fn paces_itself(&self) -> bool {
        self.camera
    }

    fn fill(&mut self, seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError> {
        if self.gated {
            // Blocks the frame thread only, as a camera would; EOF ends the stream.
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                return Ok(Filled::End);
            }
            self.gated = false;
        }
        if self.report_every > 0 && seq % self.report_every == 0 {
            say(format!("filled frame {seq}"));
        }
        if let Some(pattern) = &mut self.pattern {
            return pattern.fill(seq, dst);
        }
        dst.copy_from_slice(&self.clip[self.next % self.clip.len()]);
        self.next += 1;
        Ok(Filled::Frame { capture_ns: None })
    }

    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError> {
        let Some(pattern) = &mut self.pattern else {
            return Err(SourceError::Unsupported("a clip has one format".to_owned()));
        };
        pattern.set_format(format)?;
        self.format = format;
        say(format!("source format {format}"));
        Ok(())
    }

    fn set_pattern(&mut self, kind: PatternKind) -> Result<(), SourceError> {
        let Some(pattern) = &mut self.pattern else {
            return Err(SourceError::Unsupported("a clip has no pattern".to_owned()));
        };
        pattern.set_pattern(kind)?;
        say(format!("source pattern {kind}"));
        Ok(())
    }
}

/// A 4:2:0 test clip made by ffmpeg (`testsrc2`), as Y4M bytes and its frames.
pub struct Clip {
    pub y4m: Vec<u8>,
    pub format: FrameFormat,
    pub frames: Vec<Vec<u8>>,
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// `ffmpeg -f lavfi -i testsrc2=size=WxH:rate=25 -frames:v N -pix_fmt yuv420p -f
/// yuv4mpegpipe -`, decoded.
pub fn ffmpeg_clip(width: u32, height: u32, frames: u32) -> Clip {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=25"))
        .args(["-frames:v", &frames.to_string()])
        .args(["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg failed");
    let format = FrameFormat::new(width, height, PixelFormat::I420).unwrap();
    let frames = read_y4m(&out.stdout).1;
    Clip {
        y4m: out.stdout,
        format,
        frames,
    }
}

/// A Y4M stream's header fields (W, H, F, C) and its frames (planes concatenated).
pub fn read_y4m(bytes: &[u8]) -> (y4m::Decoder<&[u8]>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut decoder = y4m::Decoder::new(bytes).expect("a Y4M header");
    let header = y4m::Decoder::new(bytes).unwrap();
    while let Ok(frame) = decoder.read_frame() {
        frames.push(
            [
                frame.get_y_plane(),
                frame.get_u_plane(),
                frame.get_v_plane(),
            ]
            .concat(),
        );
    }
    (header, frames)
}

/// Asserts that `got` is an in-order subset of `clip` (each got frame equal to a clip
/// frame, later in the clip than the previous one), and returns the matched indices.
pub fn assert_in_order_subset(got: &[Vec<u8>], clip: &[Vec<u8>]) -> Vec<usize> {
    let mut next = 0;
    let mut matched = Vec::new();
    for (i, frame) in got.iter().enumerate() {
        let found = clip[next..].iter().position(|c| c == frame);
        let Some(offset) = found else {
            panic!(
                "recorded frame {i} is not one of clip frames {next}.. (bit-exact); matched so far {matched:?}"
            );
        };
        matched.push(next + offset);
        next += offset + 1;
    }
    matched
}

/// An X server of its own (Xvfb on a display it picks), killed on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb 1280x1024x24, or prints a visible SKIPPED line and returns `None` when
    /// Xvfb (or another tool in `needs`) is not installed.
    pub fn start(test: &str, needs: &[&str]) -> Option<Xvfb> {
        for tool in std::iter::once(&"Xvfb").chain(needs) {
            if !have(tool) {
                eprintln!("SKIPPED {test}: {tool} not found (install xvfb, x11-apps, xdotool)");
                println!("SKIPPED {test}: {tool} not found");
                return None;
            }
        }
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        // Xvfb writes the display number it took to -displayfd once it accepts clients.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(HANG).expect("Xvfb reported no display");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb exited without a display");
        Some(Xvfb {
            child,
            display: format!(":{number}"),
        })
    }

    /// Runs an X client on this display to completion, killing it after `HANG`.
    pub fn run(&self, program: &str, args: &[&str]) -> Finished {
        let mut cmd = Command::new(program);
        cmd.args(args).env("DISPLAY", &self.display);
        ChildProc::spawn_with(cmd, Output::Bytes).finish()
    }

    /// The id of the first window whose name matches `pattern`, waiting for it.
    pub fn window(&self, pattern: &str) -> String {
        let found = self.run("xdotool", &["search", "--sync", "--name", pattern]);
        assert!(
            found.status.success(),
            "xdotool search failed: {}",
            found.stderr
        );
        found
            .stdout_text()
            .lines()
            .next()
            .expect("a window id")
            .to_owned()
    }

    /// Tries `attempt` now and again after each change of window `id`'s title (the viewer
    /// updates it twice a second, after showing frames), until it returns `Some`; panics
    /// with `what` after `HANG`. The events come from `xprop -spy`.
    pub fn on_title_change<T>(
        &self,
        id: &str,
        what: &str,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> T {
        let mut cmd = Command::new("xprop");
        cmd.args(["-spy", "-id", id, "WM_NAME"])
            .env("DISPLAY", &self.display);
        let spy = ChildProc::spawn(cmd);
        let deadline = Instant::now() + HANG;
        loop {
            // xprop prints the current title at once, then one line per change.
            let left = deadline.saturating_duration_since(Instant::now());
            if spy.next_line(left).is_none() {
                panic!("{what} did not happen within {HANG:?}");
            }
            if let Some(value) = attempt() {
                return value;
            }
        }
    }

    /// The window's name.
    pub fn window_name(&self, id: &str) -> String {
        self.run("xdotool", &["getwindowname", id])
            .stdout_text()
            .trim()
            .to_owned()
    }

    /// A screenshot of window `id` (xwd).
    pub fn screenshot(&self, id: &str) -> Xwd {
        let shot = self.run("xwd", &["-silent", "-id", id]);
        assert!(shot.status.success(), "xwd failed: {}", shot.stderr);
        Xwd::parse(&shot.stdout)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A decoded XWD (X Window Dump) of a 24/32-bit TrueColor window.
pub struct Xwd {
    pub width: usize,
    pub height: usize,
    /// Packed 0x00RRGGBB per pixel, row-major.
    pub pixels: Vec<u32>,
}

impl Xwd {
    /// Parses an XWD file (X11 XWDFileHeader: 25 big-endian u32, then the window name,
    /// then `ncolors` 12-byte colour entries, then the image).
    pub fn parse(bytes: &[u8]) -> Xwd {
        let field = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        let header_size = field(0) as usize;
        let (width, height) = (field(4) as usize, field(5) as usize);
        let byte_order = field(7); // 0 LSBFirst, 1 MSBFirst
        let bits_per_pixel = field(11);
        let bytes_per_line = field(12) as usize;
        let ncolors = field(19) as usize;
        assert_eq!(field(2), 2, "ZPixmap");
        assert_eq!(bits_per_pixel, 32, "32 bits per pixel");
        let data = &bytes[header_size + ncolors * 12..];
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let p = &data[y * bytes_per_line + x * 4..][..4];
                let p: [u8; 4] = p.try_into().unwrap();
                let v = if byte_order == 0 {
                    u32::from_le_bytes(p)
                } else {
                    u32::from_be_bytes(p)
                };
                pixels.push(v & 0x00ff_ffff);
            }
        }
        Xwd {
            width,
            height,
            pixels,
        }
    }

    /// The (R, G, B) at (x, y).
    pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let v = self.pixels[y * self.width + x];
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    }
}

/// Raw output split into frames of `format`, asserting it holds whole frames only.
pub fn whole_frames(bytes: &[u8], format: FrameFormat) -> Vec<Vec<u8>> {
    assert_eq!(bytes.len() % format.frame_bytes(), 0, "whole frames only");
    bytes
        .chunks(format.frame_bytes())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A path that cannot be created, even by root.
pub fn unwritable(file: &str) -> PathBuf {
    Path::new("/nonexistent-framepipe-test-dir").join(file)
}

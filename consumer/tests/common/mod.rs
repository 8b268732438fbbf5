//! Fixtures of the consumer's integration tests: unique stream names cleaned up on drop,
//! the `consumer` binary as a child process (killed on drop) with its output collected, an
//! in-test producer thread publishing scripted frames, and an Xvfb display.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use control_msg::{Command as Ctl, CommandReceiver, EventSender, QueueConfig};
use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat, StreamName, StreamOwner};
use producer::pacing::{Pacer, Tick};
use producer::{FrameSource, PatternSource};
use shm_frames::RegionBuilder;
use shm_frames::testing::ChildProc;

/// Deadline for events in tests: it only catches hangs.
pub const HANG: Duration = Duration::from_secs(60);

/// The consumer binary under test.
pub const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

// Shared with every crate's tests; not every test file uses both.
#[allow(unused_imports)]
pub use shm_frames::testing::{TempDir, TestStream};

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts a normal exit with `code` (never a panic's 101), printing stderr otherwise.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "exit status {:?}, stderr:\n{}",
            self.status,
            self.stderr
        );
        self
    }
}

/// A child process (killed and reaped on drop) whose stdout is collected as bytes and whose
/// stderr lines are collected and forwarded, so a test can wait for one with a deadline.
pub struct Proc {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr_lines: Receiver<String>,
    stderr_all: Arc<Mutex<String>>,
    reaped: Option<ExitStatus>,
}

impl Proc {
    /// `consumer args...` with stdin closed.
    pub fn consumer(args: &[&str]) -> Proc {
        Proc::spawn(Command::new(CONSUMER).args(args), None)
    }

    /// Spawns `cmd`, feeding `stdin` (if any) from a thread.
    pub fn spawn(cmd: &mut Command, stdin: Option<Vec<u8>>) -> Proc {
        let feed = stdin.is_some();
        let mut proc = Proc::spawn_piped(cmd, feed);
        if let Some(bytes) = stdin {
            proc.feed(bytes);
        }
        proc
    }

    /// Spawns `cmd` with stdin a pipe held open (if `piped`) until [`Proc::feed`].
    pub fn spawn_piped(cmd: &mut Command, piped: bool) -> Proc {
        cmd.stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn child");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes);
            bytes
        });
        let err = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        let all = Arc::new(Mutex::new(String::new()));
        let all_writer = all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("  [child] {line}");
                all_writer.lock().unwrap().push_str(&line);
                all_writer.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        Proc {
            child,
            stdin,
            stdout: Some(stdout),
            stderr_lines: rx,
            stderr_all: all,
            reaped: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `bytes` to the child's stdin from a thread, then closes it.
    pub fn feed(&mut self, bytes: Vec<u8>) {
        if let Some(mut input) = self.stdin.take() {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = input.write_all(&bytes);
            });
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn expect_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no stderr line with {needle:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("child closed stderr before a line with {needle:?}")
                }
            }
        }
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits (with a deadline that only catches hangs) for the child to exit: its stderr
    /// closing is the event (the kernel closes it when the child dies), then it is reaped.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(_) => continue, // Kept in stderr_all.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("child did not exit within {HANG:?}"),
            }
        }
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let status = self.child.wait().expect("wait for the child");
        self.reaped = Some(status);
        let stderr = self.stderr_all.lock().unwrap().clone();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `consumer args...` to the end.
pub fn consumer(args: &[&str]) -> Finished {
    Proc::consumer(args).finish()
}

/// What an in-test producer publishes in one phase.
#[derive(Clone)]
pub enum Frames {
    /// The test pattern.
    Pattern(PatternKind),
    /// These frames, in order (each exactly one frame of the phase's format).
    Clip(Arc<Vec<Vec<u8>>>),
}

/// One phase of an in-test producer: `count` frames (forever if `None`) of `format`.
#[derive(Clone)]
pub struct Phase {
    pub format: FrameFormat,
    pub frames: Frames,
    pub count: Option<u64>,
}

/// How an in-test producer runs.
#[derive(Clone)]
pub struct Script {
    pub seats: u32,
    /// Frames per second; 0 for as fast as possible.
    pub fps: f64,
    /// Publish nothing until this many consumers said Hello on the command queue.
    pub wait_for_hellos: u32,
    /// Phases in order; between two, the region is replaced (a format change).
    pub phases: Vec<Phase>,
}

impl Script {
    pub fn pattern(format: FrameFormat, kind: PatternKind, fps: f64) -> Script {
        Script {
            seats: 1,
            fps,
            wait_for_hellos: 0,
            phases: vec![Phase {
                format,
                frames: Frames::Pattern(kind),
                count: None,
            }],
        }
    }
}

/// A producer on a thread of the test process: it owns the stream name, creates the region
/// and the queues, and publishes its script; dropping it stops it (state Stopping, objects
/// unlinked).
pub struct TestProducer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
    events: Receiver<Event>,
}

/// What an in-test producer reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The region of a phase exists (epoch).
    Ready(u64),
    /// A consumer said Hello.
    Hello(u32),
    /// The script's phases are all published.
    Done,
    /// A consumer asked for another frame rate.
    SetFps(u32),
    /// A consumer left.
    Bye(u32),
}

/// Reports what consumers said on the command queue.
fn report(command: Ctl, tx: &Sender<Event>) {
    let event = match command {
        Ctl::Hello { seat, .. } => Event::Hello(seat),
        Ctl::Bye { seat } => Event::Bye(seat),
        Ctl::SetFps { fps } => Event::SetFps(fps.round() as u32),
        _ => return,
    };
    let _ = tx.send(event);
}

impl TestProducer {
    /// Starts the script and returns once the first region exists.
    pub fn start(stream: &TestStream, script: Script) -> TestProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let name = stream.name.clone();
        let stopper = stop.clone();
        let thread = std::thread::spawn(move || produce(&name, &script, &stopper, &tx));
        let producer = TestProducer {
            stop,
            thread: Some(thread),
            events: rx,
        };
        producer.expect(|e| matches!(e, Event::Ready(_)));
        producer
    }

    /// Waits for an event matching `want` (others are skipped).
    pub fn expect(&self, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if want(&event) => return event,
                Ok(_) => {}
                Err(e) => panic!("producer event not seen: {e}"),
            }
        }
    }

    /// Stops and returns the number of frames published.
    pub fn stop(mut self) -> u64 {
        self.stop_now()
    }

    fn stop_now(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("producer thread panicked"))
            .unwrap_or(0)
    }
}

impl Drop for TestProducer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn produce(name: &StreamName, script: &Script, stop: &AtomicBool, tx: &Sender<Event>) -> u64 {
    let owner = StreamOwner::claim(name).expect("claim the test stream");
    let first = &script.phases[0];
    let mut writer = RegionBuilder::new(&owner, first.format)
        .seats(script.seats)
        .create()
        .expect("create the region");
    let supervisor = writer.supervisor();
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("ctl queue");
    let _events: Vec<EventSender> = (0..script.seats)
        .map(|seat| EventSender::create(&owner, seat, &QueueConfig::new()).expect("event queue"))
        .collect();
    let _ = tx.send(Event::Ready(writer.epoch()));

    let mut hellos = 0;
    let mut supervisor = supervisor;
    while hellos < script.wait_for_hellos && !stop.load(Ordering::Relaxed) {
        supervisor.beat();
        if let Ok(Some(cmd)) = commands.recv_timeout(Duration::from_millis(50)) {
            hellos += u32::from(matches!(cmd, Ctl::Hello { .. }));
            report(cmd, tx);
        }
    }

    let mut published = 0u64;
    let mut last_beat = Instant::now();
    let mut pacer = Pacer::new(script.fps);
    for (index, phase) in script.phases.iter().enumerate() {
        if index > 0 {
            writer.replace(phase.format).expect("replace the region");
            supervisor = writer.supervisor();
            let _ = tx.send(Event::Ready(writer.epoch()));
        }
        let mut pattern = match &phase.frames {
            Frames::Pattern(kind) => Some(PatternSource::new(phase.format, *kind).unwrap()),
            Frames::Clip(_) => None,
        };
        let mut i = 0u64;
        while phase.count.is_none_or(|c| i < c) {
            if stop.load(Ordering::Relaxed) {
                return published;
            }
            if last_beat.elapsed() >= Duration::from_millis(50) {
                supervisor.beat();
                while let Ok(Some(cmd)) = commands.try_recv() {
                    report(cmd, tx);
                }
                last_beat = Instant::now();
            }
            // Pacing, as a camera would (the producer's own pacer: at most a 50 ms slice
            // per call, so stop and the heartbeat are seen meanwhile).
            if pacer.wait() == Tick::NotYet {
                continue;
            }
            let Some(mut slot) = writer.slot() else {
                continue;
            };
            let seq = slot.seq();
            match (&mut pattern, &phase.frames) {
                (Some(source), _) => {
                    source.fill(seq, &mut slot).unwrap();
                }
                (None, Frames::Clip(frames)) => {
                    slot.copy_from_slice(&frames[(i as usize) % frames.len()]);
                }
                (None, Frames::Pattern(_)) => unreachable!(),
            }
            slot.publish(None);
            published += 1;
            i += 1;
        }
    }
    let _ = tx.send(Event::Done);
    // Keep beating until told to stop, so the stream stays live (and then ends cleanly).
    while !stop.load(Ordering::Relaxed) {
        supervisor.beat();
        if let Ok(Some(cmd)) = commands.recv_timeout(Duration::from_millis(50)) {
            report(cmd, tx);
        }
    }
    published
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
        Proc::spawn(&mut cmd, None).finish()
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

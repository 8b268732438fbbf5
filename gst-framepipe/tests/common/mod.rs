//! Fixtures for the end-to-end tests: the plugin's build directory for `GST_PLUGIN_PATH`,
//! the framepipe binaries, child processes killed on drop whose output lines can be
//! awaited with a deadline, and frame-by-frame comparisons of raw files.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use shm_frames::testing::{HANG, TempDir, TestStream};

/// GStreamer initialised and the plugin registered in this process (no shared object).
pub fn init_in_process() {
    gst::init().unwrap();
    gstframepipe::plugin_register_static().unwrap();
}

/// A seat on `stream`, waiting for it to appear.
pub fn reader(stream: &TestStream) -> shm_frames::Reader {
    shm_frames::Reader::open(
        &stream.name,
        shm_frames::ReaderOptions {
            wait: HANG,
            ..shm_frames::ReaderOptions::default()
        },
    )
    .expect("the stream appears")
}

/// Where cargo put `libgstframepipe.so`: the test binary lives in `<target>/<profile>/deps`.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps")
        .to_path_buf();
    assert!(
        dir.join("libgstframepipe.so").exists(),
        "no libgstframepipe.so in {}",
        dir.display()
    );
    dir
}

/// A framepipe binary (`producer`, `consumer`): `$FRAMEPIPE_BIN_DIR`, or the root
/// workspace's release build (`cargo build --release -p producer -p consumer`).
pub fn framepipe_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("FRAMEPIPE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo build --release -p producer -p consumer` at the root",
        path.display()
    );
    path
}

/// The environment every GStreamer child gets: our plugin on the path, a registry of its
/// own (so a stale system registry never hides a fresh build).
pub fn gst_env(cmd: &mut Command) -> &mut Command {
    let dir = plugin_dir();
    cmd.env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("gst-registry-tests.bin"))
}

/// `gst-launch-1.0 ARGS...` with the plugin on its path.
pub fn gst_launch(args: &[&str]) -> Command {
    let mut cmd = Command::new("gst-launch-1.0");
    gst_env(&mut cmd).args(args);
    cmd
}

/// A `producer` or `consumer` command, logging at info.
pub fn framepipe(name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(framepipe_bin(name));
    cmd.env("RUST_LOG", "info").args(args);
    cmd
}

/// A child process killed (SIGKILL) and reaped on drop. Its stderr lines (and stdout's,
/// unless stdout goes to a file) arrive through a channel.
#[derive(Debug)]
pub struct Child {
    pub child: std::process::Child,
    lines: Receiver<String>,
    reaped: bool,
    tag: String,
}

impl Child {
    /// Spawns `cmd`; `stdout_to` sends stdout to a file instead of the line channel.
    pub fn spawn(mut cmd: Command, stdout_to: Option<&Path>) -> Child {
        let tag = format!("{:?}", cmd.get_program());
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        match stdout_to {
            Some(path) => cmd.stdout(std::fs::File::create(path).expect("create output")),
            None => cmd.stdout(Stdio::piped()),
        };
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {tag}: {e}"));
        let (tx, rx) = channel();
        if let Some(stdout) = child.stdout.take() {
            let tx = tx.clone();
            let tag = tag.clone();
            std::thread::spawn(move || forward(stdout, &tx, &tag));
        }
        let stderr = child.stderr.take().expect("piped stderr");
        let echo = tag.clone();
        std::thread::spawn(move || forward(stderr, &tx, &echo));
        Child {
            child,
            lines: rx,
            reaped: false,
            tag,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line containing `needle` (others are skipped), within `timeout`.
    pub fn expect(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: no line with {needle:?} within {timeout:?}", self.tag)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: exited before a line with {needle:?}", self.tag)
                }
            }
        }
    }

    /// Waits for the child to exit (its output pipes closing is the event), within
    /// `timeout`; returns its status and the lines it printed meanwhile.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{} did not exit within {timeout:?}: {lines:#?}", self.tag)
                }
            }
        }
        let status = self.child.wait().expect("wait for the child");
        self.reaped = true;
        (status, lines)
    }

    /// SIGKILL now (reaped on drop or by `wait_exit`).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
    }

    /// SIGINT (a clean stop, as Ctrl-C).
    pub fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    }
}

/// Returns once `path` exists; panics after `timeout`. The file appearing is the event;
/// polling it every 10 ms is the simplest portable way to see it.
pub fn wait_for_file(path: impl AsRef<Path>, timeout: Duration) {
    let path = path.as_ref();
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn forward(output: impl Read, tx: &std::sync::mpsc::Sender<String>, tag: &str) {
    for line in BufReader::new(output).lines() {
        let Ok(line) = line else { break };
        eprintln!("  {tag}: {line}");
        if tx.send(line).is_err() {
            break;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn hash(frame: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    frame.hash(&mut hasher);
    hasher.finish()
}

/// The hash of each `frame_bytes` frame of a raw file (which must hold whole frames).
pub fn raw_frame_hashes(path: &Path, frame_bytes: usize) -> Vec<u64> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        data.len() % frame_bytes,
        0,
        "{} holds {} bytes, not whole {frame_bytes}-byte frames",
        path.display(),
        data.len()
    );
    data.chunks_exact(frame_bytes).map(hash).collect()
}

/// The hash of each frame of a Y4M file whose frames are `frame_bytes` long.
pub fn y4m_frame_hashes(path: &Path, frame_bytes: usize) -> Vec<u64> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(data.starts_with(b"YUV4MPEG2 "), "not a Y4M file");
    let mut at = data.iter().position(|&b| b == b'\n').expect("Y4M header") + 1;
    let mut hashes = Vec::new();
    while at < data.len() {
        let line_end = at
            + data[at..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("FRAME line");
        assert!(data[at..line_end].starts_with(b"FRAME"), "FRAME expected");
        let start = line_end + 1;
        let frame = data.get(start..start + frame_bytes).expect("a whole frame");
        hashes.push(hash(frame));
        at = start + frame_bytes;
    }
    hashes
}

/// Asserts that `received` is an in-order subsequence of `reference` (a consumer on the
/// newest frame may skip frames, never reorder or alter them) that ends with the last
/// reference frame (the last frame before a stop is always delivered). Returns how many
/// frames arrived.
pub fn assert_in_order_subset(received: &[u64], reference: &[u64]) -> usize {
    assert!(!received.is_empty(), "no frame arrived");
    let mut next = 0;
    for (i, frame) in received.iter().enumerate() {
        let found = reference[next..].iter().position(|r| r == frame);
        let Some(offset) = found else {
            panic!(
                "received frame {i} is not a reference frame at or after {next} \
                 (altered, or out of order)"
            );
        };
        next += offset + 1;
    }
    assert_eq!(
        received.last(),
        reference.last(),
        "the last frame did not arrive"
    );
    received.len()
}

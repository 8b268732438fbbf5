//! Test fixtures for every framepipe crate (feature `testing`): unique stream names whose
//! objects are unlinked on drop, temp dirs removed on drop, child processes killed on drop
//! whose output (lines or bytes) can be awaited with a deadline, and a stop to wait on.
//!
//! They live here, in the crate every other one depends on, so that `control-msg`'s tests
//! reach them without depending on `shm-frames`; `shm_frames::testing` re-exports them
//! beside its region fixtures. Tests of every crate use these so a crashed run never breaks
//! the next one.
#![allow(clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::name::StreamName;

/// Seat queues a [`TestStream`] unlinks: more than any stream has (shm-frames allows 16).
const SEAT_QUEUES: u32 = 64;

/// Generous deadline for events in tests: it only catches hangs.
pub const HANG: Duration = Duration::from_secs(30);

/// A stream name no other test (or test run) uses, whose shm object is unlinked on drop.
#[derive(Debug)]
pub struct TestStream {
    pub name: StreamName,
}

impl TestStream {
    pub fn new(tag: &str) -> TestStream {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = StreamName::new(&format!("t{}{}-{}", tag, std::process::id(), n)).unwrap();
        TestStream { name }
    }

    /// The bare stream name.
    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }

    /// The object's path under /dev/shm.
    pub fn shm_path(&self) -> String {
        format!("/dev/shm{}", self.name.shm_name())
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let _ = nix::sys::mman::shm_unlink(self.name.shm_name().as_str());
        let _ = nix::mqueue::mq_unlink(self.name.command_queue_name().as_str());
        for seat in 0..SEAT_QUEUES {
            let _ = nix::mqueue::mq_unlink(self.name.event_queue_name(seat).as_str());
        }
        for k in 0..crate::name::REPLY_QUEUES {
            let _ = nix::mqueue::mq_unlink(self.name.reply_queue_name(k).as_str());
        }
    }
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("fp-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl TempDir {
    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).expect("write a test file");
        path
    }

    /// The names of the files in it, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.path)
            .expect("read temp dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How a [`ChildProc`] takes its child's standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// As lines, interleaved with stderr's, to wait for with [`ChildProc::expect`].
    Lines,
    /// As bytes (frames, images), handed over whole by [`ChildProc::finish`]; only stderr
    /// comes as lines.
    Bytes,
}

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    pub status: std::process::ExitStatus,
    /// Standard output (in [`Output::Bytes`] mode; lines mode leaves it empty).
    pub stdout: Vec<u8>,
    /// Every stderr line, also those already awaited.
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

/// A child process killed (SIGKILL) and reaped on drop. Its stderr lines (and, in
/// [`Output::Lines`] mode, its stdout lines) arrive through a channel so a test can wait
/// for one with a deadline; stderr lines are also echoed to ours, so a failing test shows
/// them. Its stdin is a pipe, held open until closed, fed or dropped.
#[derive(Debug)]
pub struct ChildProc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reaped: bool,
}

impl ChildProc {
    /// Re-executes this test binary running only `__role_entry`, with `FP_ROLE=role`.
    pub fn role(role: &str, envs: &[(&str, String)]) -> ChildProc {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        cmd.args([
            "__role_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("FP_ROLE", role);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        ChildProc::spawn(cmd)
    }

    /// Spawns `cmd` in [`Output::Lines`] mode.
    pub fn spawn(cmd: Command) -> ChildProc {
        ChildProc::spawn_with(cmd, Output::Lines)
    }

    /// Spawns `cmd`, taking its stdout as `output` says.
    pub fn spawn_with(mut cmd: Command, output: Output) -> ChildProc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let (tx, rx) = channel();
        let all = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut out = child.stdout.take().unwrap();
        let stdout = match output {
            Output::Lines => {
                let out_tx = tx.clone();
                std::thread::spawn(move || forward(BufReader::new(out), &out_tx, None));
                None
            }
            Output::Bytes => Some(std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = std::io::Read::read_to_end(&mut out, &mut bytes);
                bytes
            })),
        };
        let stderr = child.stderr.take().unwrap();
        let keep = all.clone();
        std::thread::spawn(move || forward(BufReader::new(stderr), &tx, Some(&keep)));
        let stdin = child.stdin.take();
        ChildProc {
            child,
            stdin,
            lines: rx,
            stdout,
            stderr: all,
            reaped: false,
        }
    }

    /// The first line containing `needle` (others are skipped), within `timeout`.
    pub fn expect_contains(&self, needle: &str, timeout: Duration) -> String {
        self.expect_line(|line| line.contains(needle), needle, timeout)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line starting with `prefix` (others are skipped), within `timeout`.
    pub fn expect(&self, prefix: &str, timeout: Duration) -> String {
        self.expect_line(|line| line.starts_with(prefix), prefix, timeout)
    }

    fn expect_line(&self, wanted: impl Fn(&str) -> bool, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("no {what:?} line within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("child exited before printing {what:?}")
                }
            }
        }
    }

    /// The next line within `timeout`; `None` when none came or the child closed its output.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Every line the child prints until it exits (its output closing is the event, within
    /// [`HANG`]), then its exit code; panics if it has not exited by then.
    pub fn lines_to_exit(&mut self) -> (Vec<String>, Option<i32>) {
        let deadline = Instant::now() + HANG;
        let mut lines = Vec::new();
        while let Some(line) = self.next_line(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        }
        assert!(Instant::now() < deadline, "the child did not exit");
        (lines, self.reap().code())
    }

    /// Sends SIGTERM (a clean stop request).
    pub fn terminate(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends `signal` to the child (our own, not yet reaped: the pid cannot be reused).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// Closes the child's stdin (roles take EOF as "finish cleanly").
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Writes bytes to the child's stdin.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(bytes);
            let _ = stdin.flush();
        }
    }

    /// Writes `bytes` to the child's stdin from a thread (however much the child reads at a
    /// time), then closes it.
    pub fn feed(&mut self, bytes: Vec<u8>) {
        if let Some(mut stdin) = self.stdin.take() {
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
    }

    /// Sends one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{line}");
        }
    }

    /// SIGKILL without reaping: the child stays a zombie until `reap`. It may still be
    /// running for a moment after this returns; [`ChildProc::kill9_until_dead`] waits.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
    }

    /// SIGKILL, then waits until the child has died (its fds, sockets and locks released
    /// by the kernel) without reaping it: it stays a zombie until `reap`, so its pid stays
    /// taken. `waitid(WNOWAIT)` is the event; no deadline is needed, a SIGKILLed process
    /// always dies.
    pub fn kill9_until_dead(&mut self) {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        self.kill9();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Err(nix::errno::Errno::EINTR) => continue,
                // Dead (or already reaped elsewhere, which also means dead).
                _ => return,
            }
        }
    }

    /// Waits for the child to exit (with a deadline that only catches hangs): its output
    /// pipes closing is the event (the kernel closes them when it dies), then it is reaped.
    /// Lines not yet read are dropped.
    pub fn reap(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("child did not exit within {HANG:?}"),
            }
        }
        self.stdin = None;
        let status = self.child.wait().expect("wait for the child");
        self.reaped = true;
        status
    }

    /// [`ChildProc::reap`], then what the child left: its status, its stdout (in
    /// [`Output::Bytes`] mode) and all of its stderr.
    pub fn finish(mut self) -> Finished {
        let status = self.reap();
        let stdout = self
            .stdout
            .take()
            .map(|thread| thread.join().expect("the stdout thread"))
            .unwrap_or_default();
        let stderr = self.stderr.lock().unwrap().clone();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

/// Sends each line to `tx`; stderr's (`keep` given) are also echoed and kept.
fn forward(
    reader: impl BufRead,
    tx: &std::sync::mpsc::Sender<String>,
    keep: Option<&std::sync::Mutex<String>>,
) {
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if let Some(keep) = keep {
            eprintln!("  child: {line}");
            let mut all = keep.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
        // The receiver may be gone (the test stopped listening); keep draining the pipe.
        let _ = tx.send(line);
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A stop request threads can wait on with a deadline: it fires when every [`StopSender`]
/// is dropped (or, for [`Stop::on_stdin_eof`], when the parent closes our stdin).
#[derive(Debug)]
pub struct Stop {
    rx: Receiver<()>,
}

/// Requests a stop by being dropped.
#[derive(Debug)]
pub struct StopSender {
    _tx: std::sync::mpsc::Sender<()>,
}

impl Stop {
    /// A stop that fires when the returned sender is dropped.
    pub fn new() -> (StopSender, Stop) {
        let (tx, rx) = channel();
        (StopSender { _tx: tx }, Stop { rx })
    }

    /// A stop that fires when our stdin reaches EOF (how a test ends a role it spawned).
    pub fn on_stdin_eof() -> Stop {
        let (sender, stop) = Stop::new();
        std::thread::spawn(move || {
            wait_for_stdin_eof();
            drop(sender);
        });
        stop
    }

    /// Waits until `deadline` or the stop, whichever comes first; true if stopped.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        matches!(
            self.rx.recv_timeout(left),
            Err(RecvTimeoutError::Disconnected)
        )
    }

    /// Waits for the stop, however long it takes.
    pub fn wait(&self) {
        let _ = self.rx.recv();
    }
}

/// Reads an environment variable set by the parent for a role.
pub fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

pub fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Prints a line for the parent and flushes it.
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// Blocks until the parent closes our stdin.
pub fn wait_for_stdin_eof() {
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        sink.clear();
    }
}

/// A small deterministic generator for tests (kill offsets, garbage bytes): a 64-bit LCG
/// whose top 31 bits are returned. Seed it with something per run, e.g. the pid.
#[derive(Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value, below 2^31.
    #[allow(
        clippy::should_implement_trait,
        reason = "not an iterator: it never ends"
    )]
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// The next value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

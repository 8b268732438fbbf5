//! Crashes and hostile timing with the real binaries: a producer killed at random moments
//! and restarted under a waiting consumer, a consumer stopped for seconds, /dev/shm too
//! small. Each scenario checks: no panic (exit 101), no hang past its deadline, no torn
//! frame, and no object of the stream left behind.
//!
//! The long forms (200 kill rounds, a 5 s stop) are `#[ignore]`d; `.ci/run` runs them in
//! release mode.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shm_frames::testing::{ChildProc, HANG, Lcg, TestStream, leftovers};

const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// A producer of `stream` (the consumer binary's hidden producer subcommand), once ready.
fn producer(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["__producer", "--stream", stream.as_str(), "--size", "64x48"])
        .args(args);
    let child = ChildProc::spawn(cmd);
    child.expect_contains("ready: stream", HANG);
    child
}

/// `consumer stats --json ARGS` on `stream`, running.
fn stats(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["stats", "--stream", stream.as_str(), "--json", "--verify"])
        .args(args);
    ChildProc::spawn(cmd)
}

/// The consumer's JSON summary and its exit code.
fn summary(mut consumer: ChildProc) -> (serde_json::Value, Option<i32>) {
    let line = consumer.expect_contains("\"frames\"", HANG);
    let status = consumer.reap();
    (serde_json::from_str(&line).unwrap(), status.code())
}

/// The number a `stats` progress line gives for `what` (`"skipped "` is followed by it,
/// `" frames"` preceded by it), if `line` is a progress line.
fn progress_count(line: &str, what: &str) -> Option<u64> {
    let number = if what.starts_with(' ') {
        line.split(what).next()?.split_whitespace().last()?
    } else {
        line.split(what).nth(1)?.split_whitespace().next()?
    };
    if !line.contains(what) {
        return None;
    }
    number.parse().ok()
}

fn killed_producer_rounds(rounds: u32) {
    let stream = TestStream::new("kill");
    let consumer = stats(&stream, &["--frames", "100", "--wait", "20s"]);
    let mut offsets = Lcg(u64::from(std::process::id()));
    for _ in 0..rounds {
        let mut victim = producer(&stream, &["--fps", "500"]);
        // The random kill offset is the scenario, not a synchronisation.
        std::thread::sleep(Duration::from_millis(offsets.below(40)));
        victim.kill9();
        let status = victim.reap();
        assert_ne!(status.code(), Some(101), "the producer panicked");
    }
    // A producer that stays: the consumer reattaches and finishes its frames.
    let mut last = producer(&stream, &["--fps", "200"]);
    let (json, code) = summary(consumer);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert_eq!(json["frames"], 100, "{json}");
    last.terminate();
    assert_eq!(last.reap().code(), Some(0));
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn a_producer_killed_at_random_moments_is_followed_and_leaves_nothing() {
    killed_producer_rounds(8);
}

#[test]
#[ignore = "long: 200 kill rounds (run by .ci/run in release)"]
fn a_producer_killed_at_random_moments_200_rounds() {
    killed_producer_rounds(200);
}

fn stopped_consumer(stopped_for: Duration) {
    let stream = TestStream::new("stop");
    let mut source = producer(&stream, &["--fps", "100", "--seats", "2"]);
    let consumer = stats(&stream, &["--duration", "60s", "--wait", "5s"]);
    // Stop it only once it has taken frames: frames published before a reader's first take
    // are not "skipped" by it, so a stop before then would count nothing.
    loop {
        let line = consumer.next_line(HANG).expect("the consumer runs");
        if progress_count(&line, " frames").is_some_and(|n| n > 0) {
            break;
        }
    }
    let pid = Pid::from_raw(consumer.pid() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    // How long the consumer stays stopped is the scenario, not a synchronisation.
    std::thread::sleep(stopped_for);
    // The producer ran on while the consumer was stopped: it still answers at once.
    let beside = Command::new(CONSUMER)
        .args([
            "stats",
            "--stream",
            stream.as_str(),
            "--frames",
            "3",
            "--wait",
            "5s",
        ])
        .output();
    kill(pid, Signal::SIGCONT).unwrap();
    let beside = beside.unwrap();
    assert!(
        beside.status.success(),
        "{}",
        String::from_utf8_lossy(&beside.stderr)
    );
    // Continued, it jumps to the newest frame: its next progress lines count the frames
    // published meanwhile as skipped.
    loop {
        let line = consumer.next_line(HANG).expect("the consumer went on");
        if progress_count(&line, "skipped ").is_some_and(|n| n > 0) {
            break;
        }
    }
    kill(pid, Signal::SIGINT).unwrap();
    let (json, code) = summary(consumer);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert_eq!(json["restarts"], 0, "the consumer kept its seat: {json}");
    assert!(
        json["skipped"].as_u64().unwrap() > 0,
        "frames published while it was stopped are counted as skipped: {json}"
    );
    source.terminate();
    assert_eq!(source.reap().code(), Some(0));
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn a_stopped_consumer_does_not_stop_the_producer_and_jumps_to_the_newest_frame() {
    stopped_consumer(Duration::from_millis(500));
}

#[test]
#[ignore = "long: a 5 s SIGSTOP (run by .ci/run in release)"]
fn a_consumer_stopped_for_5_s() {
    stopped_consumer(Duration::from_secs(5));
}

#[test]
fn a_full_dev_shm_fails_at_start_with_no_space_and_leaves_nothing() {
    let unshare = nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !unshare {
        eprintln!("SKIPPED: needs root and unshare -m");
        return;
    }
    // A private 1 MiB /dev/shm in a mount namespace of its own; a 1080p region is 8+ MB.
    let stream = TestStream::new("full");
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs -o size=1m none /dev/shm && \
         {CONSUMER} __producer --stream {} --size 1920x1080 --frames 1; \
         echo EXIT $?; ls -A /dev/shm",
        stream.as_str()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("EXIT 1"), "{stdout}{stderr}");
    assert_eq!(lines.next(), None, "left behind in /dev/shm: {stdout}");
    assert!(stderr.contains("no space in /dev/shm"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("error")).count(),
        1,
        "one clear error line: {stderr}"
    );
    assert_eq!(
        leftovers(&stream.name),
        Vec::<String>::new(),
        "no queue either"
    );
}

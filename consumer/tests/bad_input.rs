//! Bad input gets one clear error line and DESIGN.md's exit code, never a panic (101), and
//! never a partial file left claiming success.

mod common;

use common::{ChildProc, Producer, Script, TempDir, TestStream, consumer, unwritable};
use frame_vocab::{FrameFormat, PixelFormat};
use shm_frames::testing::Output;

/// Not a test: where the scripted producer's child process starts (see `common`).
#[test]
fn __role_entry() {
    common::role_entry();
}

/// The one error line: starts with "consumer: error:" and holds `needle`.
fn assert_error_line(stderr: &str, needle: &str) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("consumer: error:"))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(line.contains(needle), "{line:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_stream_is_no_producer() {
    let stream = TestStream::new("c");
    for cmd in [&["stats"][..], &["pipe"], &["snapshot", "/dev/null"]] {
        let mut args = cmd.to_vec();
        args.extend(["--stream", stream.as_str(), "--wait", "300ms"]);
        let out = consumer(&args);
        out.assert_code(3);
        assert_error_line(
            &out.stderr,
            &format!("no producer for stream {}", stream.as_str()),
        );
        assert!(out.stdout.is_empty(), "{cmd:?} wrote to stdout");
    }
}

#[test]
fn unwritable_outputs_fail_before_waiting() {
    let stream = TestStream::new("c");
    for (cmd, file) in [("record", "out.y4m"), ("snapshot", "out.png")] {
        let path = unwritable(file);
        let out = consumer(&[cmd, path.to_str().unwrap(), "--stream", stream.as_str()]);
        out.assert_code(1);
        assert_error_line(&out.stderr, &format!("cannot write {}", path.display()));
        assert!(!path.exists());
    }
}

#[test]
fn a_write_error_mid_recording_leaves_no_file_claiming_success() {
    let stream = TestStream::new("c");
    let format = FrameFormat::new(64, 48, PixelFormat::I420).unwrap();
    let _producer = Producer::start(&stream, &Script::pattern(format, "moving", 100.0));
    // /dev/full accepts the open and fails every write with ENOSPC.
    let out = consumer(&[
        "record",
        "/dev/full",
        "--stream",
        stream.as_str(),
        "--fps",
        "25",
    ]);
    out.assert_code(1);
    assert_error_line(&out.stderr, "cannot write /dev/full");

    // A file in a directory: on failure nothing is left (here: a format it cannot record).
    let dir = TempDir::new("bad");
    let odd = TestStream::new("c");
    let odd_format = FrameFormat::new(65, 49, PixelFormat::Bgra).unwrap();
    let _odd = Producer::start(&odd, &Script::pattern(odd_format, "moving", 100.0));
    let path = dir.join("odd.y4m");
    let out = consumer(&["record", path.to_str().unwrap(), "--stream", odd.as_str()]);
    out.assert_code(1);
    assert_error_line(&out.stderr, "cannot record a 65x49 bgra stream as Y4M");
    assert!(dir.files().is_empty(), "left: {:?}", dir.files());
}

#[test]
fn no_display_is_one_clear_line() {
    let stream = TestStream::new("c");
    let mut cmd = std::process::Command::new(common::CONSUMER);
    cmd.args(["view", "--stream", stream.as_str()])
        .env_remove("DISPLAY");
    let out = ChildProc::spawn_with(cmd, Output::Bytes).finish();
    out.assert_code(1);
    assert_error_line(&out.stderr, "no display");
    assert!(out.stderr.contains("consumer stats") && out.stderr.contains("xvfb-run"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["stats", "--wait", "soon"][..],
        &["stats", "--stream", "a/b"],
        &["stats", "--frames", "0"],
        &["record"],
        &["nonsense"],
    ] {
        let out = consumer(args);
        out.assert_code(2);
        assert!(!out.stderr.contains("panicked"));
    }
    let help = consumer(&["--help"]);
    help.assert_code(0);
    let text = help.stdout_text();
    assert!(
        text.contains("Examples:") && text.contains("consumer demo"),
        "{text}"
    );
}

#[test]
fn a_live_producer_without_frames_is_a_timeout() {
    let stream = TestStream::new("c");
    let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
    // Gated and never opened: a live producer that publishes nothing.
    let _producer = Producer::start(&stream, &Script::pattern(format, "moving", 0.0).gated());
    let dir = TempDir::new("timeout");
    let path = dir.join("none.png");
    let out = consumer(&[
        "snapshot",
        path.to_str().unwrap(),
        "--stream",
        stream.as_str(),
        "--wait",
        "300ms",
    ]);
    out.assert_code(4);
    assert_error_line(&out.stderr, "no frame from stream");
    assert!(dir.files().is_empty(), "left: {:?}", dir.files());
}

#[test]
fn a_stream_of_another_user_is_permission_denied() {
    if !nix::unistd::geteuid().is_root() || !common::have("setpriv") {
        println!("SKIPPED a_stream_of_another_user: needs root and setpriv");
        eprintln!("SKIPPED a_stream_of_another_user: needs root and setpriv");
        return;
    }
    // The stream is root's (mode 0600); the consumer runs as nobody (uid 65534), from a copy
    // of the binary that nobody can execute (the build directory may not be reachable).
    let stream = TestStream::new("c");
    let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
    let _producer = Producer::start(&stream, &Script::pattern(format, "moving", 30.0));
    let dir = TempDir::new("user");
    let copy = dir.join("consumer");
    std::fs::copy(common::CONSUMER, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args([
            "stats",
            "--stream",
            &format!("root/{}", stream.as_str()),
            "--wait",
            "2s",
        ]);
    let out = ChildProc::spawn_with(cmd, Output::Bytes).finish();
    out.assert_code(1);
    assert_error_line(&out.stderr, "permission denied");
    assert!(out.stderr.contains("another user"), "{}", out.stderr);
    // Names are per user: nobody's own stream of that name is another stream, and absent.
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(["stats", "--stream", stream.as_str(), "--wait", "0s"]);
    ChildProc::spawn_with(cmd, Output::Bytes)
        .finish()
        .assert_code(3);
}

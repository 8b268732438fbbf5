//! The control queue for people, end to end with the real binaries: `consumer list`,
//! `info`, `ctl` (every command, refusals, bad input) and `meta`, beside consumers that
//! follow a live format change (stats, record; view under Xvfb in `view.rs`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{
    ChildProc, Finished, Frames, HANG, Producer, Script, TempDir, TestStream, consumer, expect,
    read_y4m, spawn_consumer,
};
use frame_vocab::{FrameFormat, PixelFormat};
use serde_json::Value;
use shm_frames::testing::Output;

/// Not a test: where the scripted producer's child process starts (see `common`).
#[test]
fn __role_entry() {
    common::role_entry();
}

fn bgra(width: u32, height: u32) -> FrameFormat {
    FrameFormat::new(width, height, PixelFormat::Bgra).unwrap()
}

/// `consumer ctl --stream S args...`, run to the end.
fn ctl(stream: &TestStream, args: &[&str]) -> Finished {
    let mut all = vec!["ctl", "--stream", stream.as_str()];
    all.extend(args);
    consumer(&all)
}

fn stdout(out: &Finished) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `consumer info --json` of `stream`.
fn info(stream: &TestStream) -> Value {
    let out = consumer(&["info", "--stream", stream.as_str(), "--json"]);
    out.assert_code(0);
    serde_json::from_slice(&out.stdout).expect("info's JSON")
}

/// `consumer list --json`, the entries of `names` only (other tests run beside us).
fn listed(names: &[&str]) -> Vec<Value> {
    let out = consumer(&["list", "--json"]);
    out.assert_code(0);
    stdout(&out)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter(|entry| names.contains(&entry["name"].as_str().unwrap_or_default()))
        .collect()
}

#[test]
fn list_shows_a_live_stream_a_leftover_and_a_garbage_object_without_disturbing_them() {
    let live = TestStream::new("l");
    let left = TestStream::new("l");
    let garbage = TestStream::new("l");
    let _producer = Producer::start(&live, &Script::pattern(bgra(64, 48), "moving", 50.0));
    // A producer killed: its region stays, its lock is free.
    let mut killed = Producer::start(&left, &Script::pattern(bgra(32, 16), "moving", 50.0));
    killed.child.kill9();
    killed.child.reap();
    // Garbage where a region should be: a page of 0xA5.
    std::fs::write(garbage.shm_path(), vec![0xA5; 8192]).unwrap();
    std::fs::set_permissions(garbage.shm_path(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // Until the live one has published two frames, it has no measured rate.
    let deadline = std::time::Instant::now() + HANG;
    let entries = loop {
        let entries = listed(&[live.as_str(), left.as_str(), garbage.as_str()]);
        let measured = entries
            .iter()
            .any(|e| e["name"] == live.as_str() && e["fps"].is_number());
        if measured || std::time::Instant::now() > deadline {
            break entries;
        }
    };
    let by_name = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {entries:?}"))
    };
    let l = by_name(live.as_str());
    assert_eq!(l["state"], "live", "{l}");
    assert_eq!(l["format"], "64x48 bgra", "{l}");
    assert_eq!(l["epoch"], 1, "{l}");
    assert_eq!(l["seats"], 1, "{l}");
    assert_eq!(l["seats_used"], 0, "{l}");
    assert!(l["published"].as_u64().unwrap() >= 2, "{l}");
    assert!(l["heartbeat_age_ms"].as_u64().unwrap() < 1000, "{l}");
    assert!(l["fps"].as_f64().unwrap() > 0.0, "{l}");
    let k = by_name(left.as_str());
    assert_eq!(k["state"], "leftover", "{k}");
    let g = by_name(garbage.as_str());
    assert_eq!(g["state"], "garbage", "{g}");
    assert!(g["reason"].as_str().unwrap().contains("magic"), "{g}");

    // The human table names all three.
    let table = stdout(&consumer(&["list"]));
    for (name, state) in [
        (live.as_str(), "live"),
        (left.as_str(), "leftover"),
        (garbage.as_str(), "garbage"),
    ] {
        let row = table
            .lines()
            .find(|row| row.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(row.contains(state), "{row}");
    }
    // Nothing was taken or removed: the leftover and the garbage are still there, and the
    // live stream's only seat is free for a consumer.
    assert!(std::path::Path::new(&left.shm_path()).exists());
    assert_eq!(std::fs::read(garbage.shm_path()).unwrap(), vec![0xA5; 8192]);
    let out = consumer(&[
        "stats",
        "--stream",
        live.as_str(),
        "--frames",
        "3",
        "--json",
    ]);
    out.assert_code(0);
}

#[test]
fn info_shows_the_layout_each_seat_and_the_source() {
    let stream = TestStream::new("i");
    let producer = Producer::start(
        &stream,
        &Script::pattern(bgra(64, 48), "moving", 30.0).with(&["--seats", "2"]),
    );
    let stats = spawn_consumer(&["stats", "--stream", stream.as_str()]);
    producer.expect("consumer pid");
    let info = info(&stream);
    assert_eq!(info["state"], "live", "{info}");
    assert_eq!(info["layout"]["slot_count"], 4, "{info}");
    assert_eq!(info["layout"]["seat_count"], 2, "{info}");
    assert_eq!(info["layout"]["width"], 64, "{info}");
    assert_eq!(info["layout"]["stride"], 256, "{info}");
    assert_eq!(info["layout"]["frame_bytes"], 64 * 48 * 4, "{info}");
    assert!(
        info["source"]
            .as_str()
            .unwrap()
            .contains("scripted pattern moving"),
        "{info}"
    );
    assert_eq!(info["nominal_fps"], 30.0, "{info}");
    let seats = info["seats"].as_array().unwrap();
    let taken = seats
        .iter()
        .find(|s| s["state"] == "live")
        .unwrap_or_else(|| panic!("no live seat: {info}"));
    assert_eq!(taken["pid"], stats.pid(), "{info}");
    assert_eq!(taken["alive"], true, "{info}");
    assert_eq!(taken["delivery"], "newest", "{info}");
    assert_eq!(taken["queue_capacity"], 10, "{info}");
    assert!(seats.iter().any(|s| s["state"] == "free"), "{info}");
    let human = stdout(&consumer(&["info", "--stream", stream.as_str()]));
    assert!(
        human.contains(&format!("live pid {}", stats.pid())),
        "{human}"
    );
    assert!(human.contains("Slots          : 4"), "{human}");
}

#[test]
fn every_ctl_command_is_answered() {
    let stream = TestStream::new("k");
    let producer = Producer::start(&stream, &Script::pattern(bgra(64, 48), "moving", 30.0));
    // The only seat taken: ctl needs none.
    let _stats = spawn_consumer(&["stats", "--stream", stream.as_str()]);
    producer.expect("consumer pid");

    let out = ctl(&stream, &["ping", "--count", "3"]);
    out.assert_code(0);
    let text = stdout(&out);
    assert_eq!(text.matches("reply from stream").count(), 3, "{text}");
    assert!(
        text.contains("3 requests sent, 3 answered, 0% lost"),
        "{text}"
    );
    assert!(text.contains("rtt min/avg/max/mdev"), "{text}");

    let out = ctl(&stream, &["pause"]);
    out.assert_code(0);
    assert!(stdout(&out).contains("paused"), "{}", stdout(&out));
    // Parked: no frame follows, whatever else is asked meanwhile.
    let published = info(&stream)["published"].as_u64().unwrap();
    for (args, why) in [
        (&["fps", "10"][..], "paused"),
        (&["pattern", "bars"], "paused"),
        (&["format", "32x16"], "paused"),
    ] {
        let out = ctl(&stream, args);
        out.assert_code(1);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.lines().filter(|l| l.contains("error")).count(),
            1
        );
    }
    ctl(&stream, &["ping"]).assert_code(0);
    assert_eq!(info(&stream)["published"].as_u64().unwrap(), published);
    assert_eq!(
        info(&stream)["epoch"],
        1,
        "a refused format changed nothing"
    );

    let out = ctl(&stream, &["resume"]);
    out.assert_code(0);
    assert!(stdout(&out).contains("resumed"));
    ctl(&stream, &["fps", "15"]).assert_code(0);
    producer.expect("SetFps 15");
    ctl(&stream, &["pattern", "bars"]).assert_code(0);
    producer.expect("source pattern bars");
    let out = ctl(&stream, &["format", "32x16"]);
    out.assert_code(0);
    assert!(
        stdout(&out).contains("format now 32x16 bgra, epoch 2"),
        "{}",
        stdout(&out)
    );
    let info = info(&stream);
    assert_eq!(info["layout"]["width"], 32, "{info}");
    assert_eq!(info["epoch"], 2, "{info}");
    let out = ctl(&stream, &["format", "48x16:gray8"]);
    out.assert_code(0);
    assert!(stdout(&out).contains("format now 48x16 gray8, epoch 3"));

    let out = ctl(&stream, &["shutdown"]);
    out.assert_code(0);
    assert!(stdout(&out).contains("the producer is stopping"));
    producer.expect("stopped (Shutdown)");
    let mut child = producer.child;
    assert!(child.reap().success());
    assert!(
        shm_frames::testing::leftovers(&stream.name).is_empty(),
        "{:?}",
        shm_frames::testing::leftovers(&stream.name)
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let stream = TestStream::new("b");
    let producer = Producer::start(
        &stream,
        &Script::pattern(bgra(64, 48), "moving", 30.0).camera(),
    );
    let before = info(&stream);

    // An unknown stream.
    let unknown = TestStream::new("b");
    let out = ctl(&unknown, &["--wait", "0", "ping"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains("no producer for stream"),
        "{}",
        out.stderr
    );
    let out = consumer(&["info", "--stream", unknown.as_str()]);
    out.assert_code(3);
    assert!(out.stderr.contains("no stream"), "{}", out.stderr);

    // fps 0 on a camera.
    let out = ctl(&stream, &["fps", "0"]);
    out.assert_code(1);
    assert!(out.stderr.contains("camera paces itself"), "{}", out.stderr);
    // Sizes and pixel formats that are no format: usage errors, nothing sent.
    for (format, why) in [
        ("99999x1", "exceeds the maximum"),
        ("0x0", "zero dimension"),
        ("64x48:rgb565", "unknown pixel format"),
        ("64x48x2", "not WIDTHxHEIGHT"),
    ] {
        let out = ctl(&stream, &["format", format]);
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{format}: {}", out.stderr);
    }
    // A size the stream's own pixel format refuses (odd for i420) is a usage error too.
    let out = ctl(&stream, &["format", "63x47:i420"]);
    out.assert_code(2);

    // Every ctl reply queue taken by live processes.
    let locks: Vec<_> = (0..shm_frames::REPLY_QUEUES)
        .map(|_| shm_frames::ReplyLock::claim(&stream.name).unwrap())
        .collect();
    let out = ctl(&stream, &["ping"]);
    out.assert_code(1);
    assert!(out.stderr.contains("reply queues"), "{}", out.stderr);
    drop(locks);

    // A producer that does not answer (stopped): exit 4, then it answers again.
    producer.child.signal(nix::sys::signal::Signal::SIGSTOP);
    let out = ctl(&stream, &["--timeout", "300ms", "ping"]);
    producer.child.signal(nix::sys::signal::Signal::SIGCONT);
    out.assert_code(4);
    assert!(
        out.stderr.contains("no answer from the producer"),
        "{}",
        out.stderr
    );
    ctl(&stream, &["ping"]).assert_code(0);

    let after = info(&stream);
    for key in ["epoch", "producer_pid", "layout", "nominal_fps"] {
        assert_eq!(before[key], after[key], "{key}");
    }
}

#[test]
fn format_is_refused_for_a_file_source_and_another_users_object_is_refused() {
    let stream = TestStream::new("f");
    let format = bgra(16, 8);
    let mut script = Script::pattern(format, "moving", 30.0);
    script.frames = Frames::Clip(vec![vec![7; format.frame_bytes()]]);
    let _producer = Producer::start(&stream, &script);
    let out = ctl(&stream, &["format", "32x16"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("a clip has one format"),
        "{}",
        out.stderr
    );
    assert_eq!(info(&stream)["epoch"], 1);

    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (another user's object): needs root to chown");
        return;
    }
    let squatted = TestStream::new("f");
    std::fs::write(squatted.shm_path(), vec![0; 8192]).unwrap();
    std::os::unix::fs::chown(squatted.shm_path(), Some(4242), Some(4242)).unwrap();
    for args in [
        &["info", "--stream", squatted.as_str()][..],
        &["ctl", "--stream", squatted.as_str(), "--wait", "0", "ping"],
    ] {
        let out = consumer(args);
        out.assert_code(1);
        assert!(
            out.stderr.contains("belongs to uid 4242"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_dead_ctls_reply_queue_is_cleared_by_the_producer() {
    let stream = TestStream::new("d");
    let producer = Producer::start(&stream, &Script::pattern(bgra(16, 8), "moving", 30.0));
    // What a ctl killed before reading its answers leaves: messages in .c0, no lock.
    let queue = stream.name.reply_queue_name(0);
    let mqd = nix::mqueue::mq_open(
        queue.as_str(),
        nix::mqueue::MQ_OFlag::O_WRONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .unwrap();
    for _ in 0..3 {
        nix::mqueue::mq_send(&mqd, b"left by a dead ctl", 0).unwrap();
    }
    nix::mqueue::mq_close(mqd).unwrap();
    let depth = || control_msg::queue_depth(&stream.name, &queue).map(|d| d.0);
    assert_eq!(depth().unwrap(), 3);
    // The producer's heartbeat sweeps it and says so.
    producer.expect("cleared reply queue .c0 of a ctl that is gone");
    assert_eq!(depth().unwrap_or(1), 0, "never cleared");
    ctl(&stream, &["ping"]).assert_code(0);
}

#[test]
fn stats_and_record_follow_or_finish_on_a_live_format_change() {
    let stream = TestStream::new("g");
    let producer = Producer::start(
        &stream,
        &Script::pattern(bgra(64, 48), "moving", 30.0).with(&["--seats", "3"]),
    );
    let dir = TempDir::new("ctl");
    let file = dir.join("before.y4m");
    let stats = spawn_consumer(&["stats", "--stream", stream.as_str(), "--json"]);
    let record = spawn_consumer(&[
        "record",
        file.to_str().unwrap(),
        "--stream",
        stream.as_str(),
    ]);
    producer.expect("consumer pid");
    producer.expect("consumer pid");
    expect(&stats, "frames"); // A progress line: it takes frames.

    let out = ctl(&stream, &["format", "32x16"]);
    out.assert_code(0);
    // stats follows into the new region.
    let line = expect(&stats, "reattached");
    assert!(line.contains("32x16"), "{line}");
    // record finishes its file of the old format, with a message (Y4M has one size).
    let recorded = record.finish();
    recorded.assert_code(0);
    assert!(
        recorded
            .stderr
            .contains("changed format from 64x48 bgra to 32x16 bgra; stopped there"),
        "{}",
        recorded.stderr
    );
    let bytes = std::fs::read(&file).unwrap();
    let (decoder, frames) = read_y4m(&bytes);
    assert_eq!((decoder.get_width(), decoder.get_height()), (64, 48));
    assert!(!frames.is_empty());

    stats.signal(nix::sys::signal::Signal::SIGINT);
    let out = stats.finish();
    let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("stats JSON");
    assert_eq!(summary["format"], "32x16 bgra", "{summary}");
    assert!(summary["restarts"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["untaken"].is_u64(), "{summary}");
}

/// Frame lines of `meta --json` as (seq, dropped before it).
fn meta_frames(lines: &[Value]) -> Vec<(u64, u64)> {
    let mut frames = Vec::new();
    let mut dropped = 0;
    for line in lines {
        if let Some(k) = line["dropped"].as_u64() {
            dropped += k;
        } else if let Some(seq) = line["seq"].as_u64() {
            frames.push((seq, dropped));
            dropped = 0;
        }
    }
    frames
}

#[test]
fn meta_shows_every_frame_or_says_what_it_dropped_while_stats_skips() {
    let stream = TestStream::new("m");
    let producer = Producer::start(
        &stream,
        &Script::pattern(bgra(64, 48), "moving", 200.0).with(&["--seats", "2"]),
    );
    let stats = spawn_consumer(&["stats", "--stream", stream.as_str(), "--json"]);
    producer.expect("consumer pid");
    expect(&stats, "frames");
    let mut cmd = Command::new(common::CONSUMER);
    cmd.args([
        "meta",
        "--stream",
        stream.as_str(),
        "--json",
        "--frames",
        "400",
    ]);
    let meta = ChildProc::spawn_with(cmd, Output::Lines);
    let mut lines = Vec::new();
    let next = || {
        let line = meta.next_line(HANG).expect("a meta line");
        serde_json::from_str::<Value>(&line).ok()
    };
    // The first 100 frames' metadata.
    while meta_frames(&lines).len() < 100 {
        if let Some(value) = next() {
            lines.push(value);
        }
    }
    // stats stops for 100 more frames: the producer publishes on, its seat takes none.
    stats.signal(nix::sys::signal::Signal::SIGSTOP);
    while meta_frames(&lines).len() < 200 {
        if let Some(value) = next() {
            lines.push(value);
        }
    }
    stats.signal(nix::sys::signal::Signal::SIGCONT);
    while let Some(line) = meta.next_line(HANG) {
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            lines.push(value);
        }
    }
    let finished = meta.finish();
    finished.assert_code(0);

    let frames = meta_frames(&lines);
    assert_eq!(frames.len(), 400);
    for pair in frames.windows(2) {
        let ((a, _), (b, dropped)) = (pair[0], pair[1]);
        assert_eq!(
            b,
            a + 1 + dropped,
            "seq {a} then {b} with {dropped} dropped"
        );
    }
    for line in &lines {
        if line.get("seq").is_some() {
            assert_eq!(line["width"], 64, "{line}");
            assert!(line["publish_ns"].as_u64().unwrap() >= line["capture_ns"].as_u64().unwrap());
        }
    }

    stats.signal(nix::sys::signal::Signal::SIGINT);
    let out = stats.finish();
    let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("stats JSON");
    // About 100 frames went by while it was stopped (the signal lands a few frames late
    // at most): counted skipped from its seqs, and untaken from the metadata.
    assert!(summary["skipped"].as_u64().unwrap() >= 50, "{summary}");
    assert!(summary["untaken"].as_u64().unwrap() >= 50, "{summary}");
}

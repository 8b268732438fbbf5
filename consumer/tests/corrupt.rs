//! Garbage written into a live region while `consumer stats` reads it: the consumer counts
//! it, reattaches and goes on; it neither panics nor hangs nor stops short.

use std::process::Command;

use control_msg::{Command as Ctl, CommandSender, Sent};
use shm_frames::offsets;
use shm_frames::testing::{ChildProc, HANG, RawRegion, TestStream};

fn consumer(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consumer"));
    cmd.args(args).env_remove("RUST_LOG");
    cmd
}

#[test]
fn garbage_in_latest_is_counted_and_survived() {
    let stream = TestStream::new("cg");
    let name = stream.name.as_str();
    let producer = ChildProc::spawn(consumer(&[
        "__producer",
        "--stream",
        name,
        "--size",
        "64x48",
        "--fps",
        "100",
    ]));
    producer.expect_contains("ready:", HANG);
    let mut stats = ChildProc::spawn(consumer(&[
        "stats",
        "--stream",
        name,
        "--duration",
        "3s",
        "--json",
    ]));
    stats.expect_contains("attached", HANG);
    stats.expect_contains(" frames", HANG); // The first progress line: frames are flowing.
    let mut commands = CommandSender::open(&stream.name).unwrap();
    assert_eq!(commands.send(&Ctl::Pause).unwrap(), Sent::Queued);
    producer.expect_contains("paused", HANG);

    // While nothing moves, point `latest` back at the previous frame (whose slot really
    // holds it): no honest producer does that, and the reader has already taken newer.
    let mut raw = RawRegion::open(&stream);
    let latest = raw.read(offsets::LATEST, 8);
    let newest = latest >> 8;
    let older = (0..3usize)
        .find(|&slot| {
            let seq = raw.read(offsets::slot_seq(slot), 8);
            seq > 0 && seq < newest
        })
        .expect("an older frame in another slot");
    let older_seq = raw.read(offsets::slot_seq(older), 8);
    raw.write(offsets::LATEST, 8, (older_seq << 8) | older as u64);
    stats.expect_contains("corrupt region", HANG);
    assert_eq!(commands.send(&Ctl::Resume).unwrap(), Sent::Queued);

    let json = stats.expect("{", HANG);
    assert_eq!(stats.reap().code(), Some(0), "{json}");
    let corrupt = field(&json, "corrupt");
    let frames = field(&json, "frames");
    assert!(corrupt >= 1, "the garbage was not counted: {json}");
    assert!(
        frames > 10,
        "the consumer did not go on after the garbage: {json}"
    );
    drop(producer);
}

/// The integer value of `"key":N` in a flat JSON line.
fn field(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    json[at + key.len() + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

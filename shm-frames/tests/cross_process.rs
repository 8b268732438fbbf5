//! Cross-process tests: real processes (this test binary re-executed in a role) die, hang,
//! race and hold slots, and the region must stay correct and never hang its peers.

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use frame_vocab::{ClaimError, FrameFormat, PixelFormat, StreamName, StreamOwner};
use shm_frames::testing::{
    ChildProc, HANG, Heartbeat, RawRegion, Stop, TempDir, TestStream, check_frame, env, env_or,
    fill_frame, say,
};
use shm_frames::{
    OpenError, Reader, ReaderOptions, RegionBuilder, WaitError, WaitStrategy, offsets, testing,
};

fn small_format() -> FrameFormat {
    FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap()
}

fn options(wait: Duration) -> ReaderOptions {
    ReaderOptions {
        wait,
        strategy: WaitStrategy::Block,
        ..ReaderOptions::default()
    }
}

/// Not a test: the entry point of the child roles, run when `FP_ROLE` is set (the
/// ipc-channel pattern). Without it, it does nothing.
#[test]
fn __role_entry() {
    let Ok(role) = std::env::var("FP_ROLE") else {
        return;
    };
    let name = env("FP_STREAM").parse::<StreamName>().unwrap();
    match role.as_str() {
        "producer" => role_producer(&name),
        "holder" => role_holder(&name),
        "claim" => role_claim(&name),
        "umask-producer" => {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            role_producer(&name)
        }
        "attach" => role_attach(&name),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// Claims the name, publishes `FP_FRAMES` frames (0 = until stdin closes) at `FP_FPS` (0 =
/// as fast as it can), says DONE, then keeps its heartbeat until stdin closes.
fn role_producer(name: &StreamName) {
    let seats: u32 = env_or("FP_SEATS", "1").parse().unwrap();
    let frames: u64 = env_or("FP_FRAMES", "0").parse().unwrap();
    let fps: f64 = env_or("FP_FPS", "0").parse().unwrap();
    let owner = match StreamOwner::claim(name) {
        Ok(owner) => owner,
        Err(e) => {
            say(format!("ERROR {e}"));
            return;
        }
    };
    let mut writer = RegionBuilder::new(&owner, small_format())
        .seats(seats)
        .create()
        .unwrap();
    let _heartbeat = Heartbeat::start(writer.supervisor());
    // Closing our stdin ends the role, also while it is still publishing.
    let stop = Stop::on_stdin_eof();
    say(format!("READY epoch {}", writer.epoch()));
    let start = Instant::now();
    let mut n = 0u64;
    while frames == 0 || n < frames {
        let due = if fps > 0.0 {
            start + Duration::from_secs_f64(n as f64 / fps)
        } else {
            Instant::now()
        };
        if stop.wait_until(due) {
            return;
        }
        if let Some(mut slot) = writer.slot() {
            let seq = slot.seq();
            fill_frame(&mut slot, seq);
            slot.publish(None);
        }
        n += 1;
    }
    say(format!(
        "DONE {} skipped {}",
        writer.published(),
        writer.skipped()
    ));
    stop.wait();
}

/// Attaches, takes one frame and holds it until killed.
fn role_holder(name: &StreamName) {
    let mut reader = Reader::open(name, options(HANG)).unwrap();
    let seat = reader.seat();
    let frame = reader.wait_frame(HANG).unwrap();
    check_frame(&frame).unwrap();
    say(format!("HOLDING seat {seat} seq {}", frame.seq()));
    testing::wait_for_stdin_eof();
    drop(frame);
}

/// Tries to own the name; says RESULT WON or RESULT LOST, then waits for stdin EOF.
fn role_claim(name: &StreamName) {
    match StreamOwner::claim(name) {
        Ok(owner) => {
            let _writer = RegionBuilder::new(&owner, small_format()).create().unwrap();
            say("RESULT WON");
            testing::wait_for_stdin_eof();
        }
        Err(ClaimError::AlreadyProduced { .. }) => say("RESULT LOST"),
        Err(e) => say(format!("ERROR {e}")),
    }
}

/// Attaches with `FP_WAIT_MS` and reports the outcome.
fn role_attach(name: &StreamName) {
    let wait = Duration::from_millis(env_or("FP_WAIT_MS", "5000").parse().unwrap());
    match Reader::open(name, options(wait)) {
        Ok(reader) => say(format!("ATTACHED seat {}", reader.seat())),
        Err(OpenError::PermissionDenied { .. }) => say("ERROR permission-denied"),
        Err(e) => say(format!("ERROR {e}")),
    }
}

fn producer(stream: &TestStream, envs: &[(&str, &str)]) -> ChildProc {
    let mut all = vec![("FP_STREAM", stream.name.to_string())];
    all.extend(envs.iter().map(|(k, v)| (*k, v.to_string())));
    let child = ChildProc::role("producer", &all);
    child.expect("READY", HANG);
    child
}

fn role(role: &str, stream: &TestStream, envs: &[(&str, &str)]) -> ChildProc {
    let mut all = vec![("FP_STREAM", stream.name.to_string())];
    all.extend(envs.iter().map(|(k, v)| (*k, v.to_string())));
    ChildProc::role(role, &all)
}

/// Takes `count` frames, checking each is whole and newer than the last.
fn take_frames(reader: &mut Reader, count: usize) -> u64 {
    let mut last = 0;
    for _ in 0..count {
        let frame = reader.wait_frame(HANG).expect("frame");
        let seq = check_frame(&frame).unwrap();
        assert_eq!(seq, frame.seq());
        assert!(seq > last, "seq {seq} after {last}");
        last = seq;
    }
    last
}

/// Torn-frame stress across processes: one producer publishing as fast as it can, a
/// blocking and a spinning reader. `frames` published; every frame taken must be whole.
fn torn_frame_stress(frames: u64) {
    let stream = TestStream::new("torn");
    let frames_s = frames.to_string();
    let mut producer = producer(&stream, &[("FP_SEATS", "2"), ("FP_FRAMES", &frames_s)]);
    let readers: Vec<_> = [WaitStrategy::Block, WaitStrategy::Spin]
        .into_iter()
        .enumerate()
        .map(|(i, strategy)| {
            let name = stream.name.clone();
            std::thread::spawn(move || {
                let mut reader = Reader::open(
                    &name,
                    ReaderOptions {
                        wait: HANG,
                        strategy,
                        ..ReaderOptions::default()
                    },
                )
                .unwrap();
                let (mut last, mut taken) = (0u64, 0u64);
                while last < frames {
                    let frame = reader.wait_frame(HANG).expect("frame");
                    let seq = check_frame(&frame).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(seq, frame.seq(), "content and metadata agree");
                    assert!(seq > last, "seq {seq} after {last}");
                    // Hold every 7th frame a little longer so the producer must write
                    // around a held slot.
                    if seq % 7 == i as u64 {
                        std::hint::black_box(check_frame(&frame).unwrap());
                    }
                    last = seq;
                    taken += 1;
                }
                taken
            })
        })
        .collect();
    let taken: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let done = producer.expect("DONE", HANG);
    assert!(
        done.starts_with(&format!("DONE {frames} skipped 0")),
        "{done}"
    );
    producer.close_stdin();
    assert!(producer.reap().success());
    assert!(taken.iter().all(|&t| t > 0));
    eprintln!("stress: {frames} frames published, taken per reader: {taken:?}");
}

#[test]
fn torn_frame_stress_short() {
    torn_frame_stress(20_000);
}

/// The long run `.ci/run` does in release mode.
#[test]
#[ignore = "long: run in release by .ci/run"]
fn torn_frame_stress_million() {
    torn_frame_stress(1_000_000);
}

#[test]
fn killed_consumer_holding_a_slot_is_reclaimed() {
    let stream = TestStream::new("kc");
    let _producer = producer(&stream, &[("FP_SEATS", "2"), ("FP_FPS", "500")]);
    let mut mine = Reader::open(&stream.name, options(HANG)).unwrap();
    let mut holder = role("holder", &stream, &[]);
    let line = holder.expect("HOLDING", HANG);
    assert!(line.starts_with("HOLDING seat 1"), "{line}");
    // Both seats are taken now.
    let full = Reader::open(&stream.name, options(Duration::ZERO));
    assert!(
        matches!(full, Err(OpenError::AllSeatsTaken { .. })),
        "{full:?}"
    );

    holder.kill9();
    holder.reap();
    // The producer never stalled: our seat keeps getting new, whole frames.
    take_frames(&mut mine, 50);
    // The dead consumer's seat is reclaimed and a new consumer gets it.
    let newcomer = role("attach", &stream, &[]);
    let line = newcomer.expect("ATTACHED", HANG);
    assert_eq!(line, "ATTACHED seat 1");
    take_frames(&mut mine, 5);
}

#[test]
fn killed_producer_gives_producer_gone_and_restart_is_picked_up() {
    let stream = TestStream::new("kp");
    let mut first = producer(&stream, &[("FP_FRAMES", "3")]);
    first.expect("DONE", HANG);
    let mut reader = Reader::open(&stream.name, options(HANG)).unwrap();
    assert_eq!(reader.epoch(), 1);
    let frame = reader.wait_frame(HANG).unwrap();
    assert_eq!(frame.seq(), 3, "the newest frame, the earlier ones skipped");
    drop(frame);

    // The consumer waits (no new frames come) while the producer is killed.
    let (tx, rx) = channel();
    let waiter = std::thread::spawn(move || {
        let result = reader.wait_frame(HANG).map(|f| f.seq());
        tx.send(()).unwrap();
        (reader, result)
    });
    first.kill9();
    first.reap();
    rx.recv_timeout(HANG).expect("the wait must end, not hang");
    let (mut reader, result) = waiter.join().unwrap();
    assert!(matches!(result, Err(WaitError::ProducerGone)), "{result:?}");

    // A new producer on the same name replaces the stale object; the reader follows.
    let _second = producer(&stream, &[("FP_FPS", "200")]);
    reader.reopen(HANG).unwrap();
    assert_eq!(reader.epoch(), 2);
    take_frames(&mut reader, 3);
}

#[test]
fn zombie_producer_does_not_block_a_new_one() {
    let stream = TestStream::new("zp");
    let mut first = producer(&stream, &[("FP_FPS", "100")]);
    // Dead, but not reaped: it stays a zombie while the next one starts (a producer still
    // alive a moment after SIGKILL would rightly refuse the next one).
    first.kill9_until_dead();
    let second = producer(&stream, &[("FP_FPS", "200")]);
    let mut reader = Reader::open(&stream.name, options(HANG)).unwrap();
    assert_eq!(reader.epoch(), 2);
    take_frames(&mut reader, 3);
    first.reap();
    drop(second);
}

#[test]
fn dead_consumer_whose_pid_names_a_live_process_is_reclaimed() {
    let stream = TestStream::new("pid");
    let _producer = producer(&stream, &[("FP_SEATS", "1"), ("FP_FPS", "200")]);
    let mut holder = role("holder", &stream, &[]);
    holder.expect("HOLDING seat 0", HANG);
    holder.kill9_until_dead(); // A zombie consumer: never reaped before the seat must be free.
    // Whatever the reclaimer did by now, make the seat look taken by a live process (us):
    // a Live word with our pid, and a hold. Only the free lock may decide.
    let mut raw = RawRegion::open(&stream);
    let live_word = (2u64 << 56) | (7 << 32) | u64::from(std::process::id());
    raw.write(offsets::seat_word(0), 8, live_word);
    raw.write(offsets::seat_hold(0), 4, 1);
    let newcomer = role("attach", &stream, &[]);
    assert_eq!(newcomer.expect("ATTACHED", HANG), "ATTACHED seat 0");
    holder.reap();
}

#[test]
fn two_producers_racing_for_a_name_exactly_one_wins() {
    for round in 0..50 {
        let stream = TestStream::new("race");
        let mut a = role("claim", &stream, &[]);
        let mut b = role("claim", &stream, &[]);
        let ra = a.expect("RESULT", HANG);
        let rb = b.expect("RESULT", HANG);
        let mut results = [ra.clone(), rb.clone()];
        results.sort();
        assert_eq!(
            results,
            ["RESULT LOST", "RESULT WON"],
            "round {round}: {ra} / {rb}"
        );
        a.close_stdin();
        b.close_stdin();
        assert!(a.reap().success() && b.reap().success());
    }
}

#[test]
fn region_mode_is_0600_even_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let stream = TestStream::new("um");
    let _child = {
        let child = role("umask-producer", &stream, &[("FP_FPS", "10")]);
        child.expect("READY", HANG);
        child
    };
    let mode = std::fs::metadata(stream.shm_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn another_user_gets_permission_denied() {
    if !nix::unistd::Uid::effective().is_root() || which("setpriv").is_none() {
        eprintln!("SKIPPED: needs root and setpriv to run a process as another uid");
        return;
    }
    let stream = TestStream::new("uid");
    let _producer = producer(&stream, &[("FP_FPS", "10")]);
    // Copy this test binary where uid 65534 may execute it.
    let tmp = TempDir::new("uid");
    let dir = &tmp.path;
    let copy = dir.join("test-bin");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args([
            "__role_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("FP_ROLE", "attach")
        .env("FP_STREAM", format!("root/{}", stream.name))
        .env("FP_WAIT_MS", "0");
    let child = ChildProc::spawn(cmd);
    assert_eq!(child.expect("ERROR", HANG), "ERROR permission-denied");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}

#[test]
fn waits_time_out_no_sooner_than_asked() {
    let stream = TestStream::new("to");
    let owner = StreamOwner::claim(&stream.name).unwrap();
    let mut writer = RegionBuilder::new(&owner, small_format()).create().unwrap();
    let mut slot = writer.slot().unwrap();
    fill_frame(&mut slot, 1);
    slot.publish(None);
    let supervisor = writer.supervisor();
    let mut reader = Reader::open(&stream.name, options(HANG)).unwrap();
    drop(reader.wait_frame(HANG).unwrap());
    for i in 0..200u64 {
        supervisor.beat();
        let timeout = Duration::from_micros(500 + (i * 7919) % 4000);
        let start = Instant::now();
        let result = reader.wait_frame(timeout).map(|f| f.seq());
        let elapsed = start.elapsed();
        assert!(matches!(result, Err(WaitError::Timeout)), "{result:?}");
        assert!(
            elapsed >= timeout,
            "returned after {elapsed:?}, asked {timeout:?}"
        );
    }
}

//! Signals at 1 kHz on both sides (issue 10, scenario 12). The binaries' default SIGUSR1
//! disposition ends them, so this tests the library: role processes (this test binary
//! re-executed) install a no-op SIGUSR1 handler *without* `SA_RESTART`, so every blocking
//! call in them can fail with EINTR, and run a `Writer` that publishes or a `Reader` that
//! waits for frames with each strategy, while the test sends SIGUSR1 to all of them every
//! millisecond. No call may fail spuriously and every frame must verify.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use frame_vocab::{FrameFormat, PixelFormat, StreamName, StreamOwner};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::Pid;
use shm_frames::testing::{
    ChildProc, HANG, Heartbeat, Stop, TestStream, check_frame, env, fill_frame, say,
};
use shm_frames::{Reader, ReaderOptions, RegionBuilder, WaitStrategy};

/// How many SIGUSR1 this process has taken (the handler's only action).
static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_signal(_: nix::libc::c_int) {
    // An atomic add is async-signal-safe.
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// A no-op SIGUSR1 handler without `SA_RESTART`: interrupted system calls return EINTR.
fn install_handler() {
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic, which is async-signal-safe, and no
    // other code of this process changes SIGUSR1's disposition.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
}

/// Not a test: the entry point of the child roles, run when `FP_ROLE` is set.
#[test]
fn __role_entry() {
    let Ok(role) = std::env::var("FP_ROLE") else {
        return;
    };
    install_handler();
    let name = env("FP_STREAM").parse::<StreamName>().unwrap();
    match role.as_str() {
        "writer" => role_writer(&name),
        "reader" => role_reader(&name),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// Publishes as fast as it can (3 seats) until stdin closes, then reports its counts.
fn role_writer(name: &StreamName) {
    let owner = StreamOwner::claim(name).expect("claim");
    let format = FrameFormat::new(320, 240, PixelFormat::Bgra).unwrap();
    let mut writer = RegionBuilder::new(&owner, format)
        .seats(3)
        .create()
        .expect("create");
    let _heartbeat = Heartbeat::start(writer.supervisor());
    let stop = Stop::on_stdin_eof();
    say("READY");
    // Paced at 1 kHz by the stop's own deadline wait (it, too, may be interrupted).
    while !stop.wait_until(std::time::Instant::now() + Duration::from_millis(1)) {
        if let Some(mut slot) = writer.slot() {
            let seq = slot.seq();
            fill_frame(&mut slot, seq);
            slot.publish(None);
        }
    }
    say(format!(
        "DONE published {} skipped {} signals {}",
        writer.published(),
        writer.skipped(),
        SIGNALS.load(Ordering::Relaxed)
    ));
}

/// Takes `FP_FRAMES` frames with strategy `FP_STRATEGY`, verifying each; reports the first
/// error, or its counts.
fn role_reader(name: &StreamName) {
    let strategy = match env("FP_STRATEGY").as_str() {
        "block" => WaitStrategy::Block,
        "spin" => WaitStrategy::Spin,
        _ => WaitStrategy::SpinThenBlock(Duration::from_micros(200)),
    };
    let frames: u64 = env("FP_FRAMES").parse().unwrap();
    let mut reader = Reader::open(
        name,
        ReaderOptions {
            wait: HANG,
            strategy,
            ..ReaderOptions::default()
        },
    )
    .expect("open");
    say("ATTACHED");
    let mut last = 0;
    for _ in 0..frames {
        let frame = match reader.wait_frame(HANG) {
            Ok(frame) => frame,
            Err(e) => {
                say(format!("ERROR {e}"));
                return;
            }
        };
        match check_frame(&frame) {
            Ok(seq) if seq > last => last = seq,
            Ok(seq) => {
                say(format!("ERROR seq {seq} after {last}"));
                return;
            }
            Err(e) => {
                say(format!("ERROR torn: {e}"));
                return;
            }
        }
    }
    say(format!(
        "DONE frames {frames} signals {}",
        SIGNALS.load(Ordering::Relaxed)
    ));
}

/// The number after `key ` in `line`.
fn number(line: &str, key: &str) -> u64 {
    line.split(&format!("{key} "))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {line:?}"))
}

/// The role's first DONE or ERROR line.
fn outcome(role: &ChildProc) -> String {
    loop {
        let line = role.next_line(HANG).expect("the role reports");
        if line.starts_with("DONE") || line.starts_with("ERROR") {
            return line;
        }
    }
}

#[test]
fn sigusr1_at_1_khz_on_both_sides_causes_no_spurious_error() {
    let stream = TestStream::new("sig");
    let envs = |role_env: &[(&'static str, String)]| {
        let mut all = vec![("FP_STREAM", stream.as_str().to_owned())];
        all.extend(role_env.iter().cloned());
        all
    };
    let mut writer = ChildProc::role("writer", &envs(&[]));
    writer.expect("READY", HANG);
    let readers: Vec<_> = ["block", "spin", "spin-then-block"]
        .into_iter()
        .map(|strategy| {
            let reader = ChildProc::role(
                "reader",
                &envs(&[
                    ("FP_STRATEGY", strategy.to_owned()),
                    ("FP_FRAMES", "400".to_owned()),
                ]),
            );
            reader.expect("ATTACHED", HANG);
            (strategy, reader)
        })
        .collect();

    // SIGUSR1 to every role, once a millisecond (the rate is the scenario), until stopped.
    let pids: Vec<Pid> = std::iter::once(writer.pid())
        .chain(readers.iter().map(|(_, r)| r.pid()))
        .map(|pid| Pid::from_raw(pid as i32))
        .collect();
    let running = Arc::new(AtomicBool::new(true));
    let (sent_tx, sent_rx) = mpsc::channel();
    let sender = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while running.load(Ordering::Relaxed) {
                for &pid in &pids {
                    let _ = kill(pid, Signal::SIGUSR1);
                }
                sent += 1;
                // The 1 kHz signal rate is the scenario, not a synchronisation.
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = sent_tx.send(sent);
        })
    };

    let mut results = Vec::new();
    for (strategy, reader) in &readers {
        results.push((strategy, outcome(reader)));
    }
    // The writer is still being signalled while it finishes.
    writer.close_stdin();
    let done = outcome(&writer);
    running.store(false, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent_rx.recv().unwrap();

    for (strategy, line) in &results {
        assert!(line.starts_with("DONE frames 400"), "{strategy}: {line}");
        assert!(number(line, "signals") > 0, "{strategy} took no signal");
    }
    assert_eq!(number(&done, "skipped"), 0, "{done}");
    assert!(number(&done, "published") >= 400, "{done}");
    assert!(number(&done, "signals") > 0, "the writer took no signal");
    assert!(sent > 0);
    for (strategy, mut reader) in readers {
        assert_eq!(reader.reap().code(), Some(0), "{strategy}");
    }
    assert_eq!(writer.reap().code(), Some(0));
    assert!(
        !std::path::Path::new(&stream.shm_path()).exists(),
        "the writer's region was left"
    );
}

//! Name ownership across network namespaces: the owner socket is per network namespace
//! while /dev/shm and the mqueues are not, so a producer in another namespace must be
//! refused by the region's producer lock, before it touches any queue of the name.
//! Needs root and `unshare`; skipped with a message otherwise.

use std::process::Command;

use shm_frames::testing::{ChildProc, HANG, TestStream};

const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

fn can_unshare() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn a_producer_in_another_network_namespace_is_refused_and_touches_nothing() {
    if !can_unshare() {
        eprintln!("SKIPPED: needs root and unshare -n");
        return;
    }
    let stream = TestStream::new("netns");
    let mut first = Command::new(CONSUMER);
    first.args([
        "__producer",
        "--stream",
        stream.as_str(),
        "--size",
        "64x48",
        "--fps",
        "50",
    ]);
    let first = ChildProc::spawn(first);
    first.expect_contains("ready: stream", HANG);

    let second = Command::new("unshare")
        .args([
            "-n",
            CONSUMER,
            "__producer",
            "--stream",
            stream.as_str(),
            "--frames",
            "3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("already produced by pid {}", first.pid())),
        "{stderr}"
    );
    assert!(
        !stderr.contains("stale"),
        "it touched the first producer's queues: {stderr}"
    );

    // The first producer's region and queues are intact: a consumer attaches and its
    // queues are still there.
    let name = &stream.name;
    for queue in [name.command_queue_name(), name.event_queue_name(0)] {
        let open = nix::mqueue::mq_open(
            queue.as_str(),
            nix::mqueue::MQ_OFlag::O_RDONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK,
            nix::sys::stat::Mode::empty(),
            None,
        );
        assert!(open.is_ok(), "{queue} is gone: {open:?}");
    }
    let stats = Command::new(CONSUMER)
        .args([
            "stats",
            "--stream",
            stream.as_str(),
            "--frames",
            "5",
            "--verify",
            "--wait",
            "10s",
        ])
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
}

//! The queue transport against the real kernel, across real processes: full queues drop
//! and count, garbage is rejected and counted, permissions and limits give typed errors.
//!
//! Cross-process tests re-execute this test binary with [`ROLE`] set (the ipc-channel
//! pattern): the child runs the same test function, which sees the role and plays it. The
//! two sides talk over the child's stdin/stdout in lines starting with `@@`; every wait has
//! a deadline that only catches hangs, nothing is synchronised by sleeping.

use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, ChildStdout, Command as Process, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use control_msg::{
    Command, CommandReceiver, CommandSender, CreateError, DecodeError, Event, EventReceiver,
    EventSender, KernelLimit, MSG_SIZE, Message, OpenError, QueueConfig, Rejected, Sent, encode,
};
use frame_vocab::testing::TestStream;
use frame_vocab::{Deadline, StreamName, StreamOwner};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, mq_close, mq_open, mq_send};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{Mode, fstat, umask};
use nix::unistd::geteuid;

/// Names the role a re-executed child plays.
const ROLE: &str = "CONTROL_MSG_TEST_ROLE";
/// Names the stream the child works on.
const STREAM: &str = "CONTROL_MSG_TEST_STREAM";
/// Long enough for any healthy run on a loaded machine; only catches hangs.
const HANG: Duration = Duration::from_secs(20);
/// The uid and gid of `nobody`, for "another user".
const NOBODY: u32 = 65_534;

/// A stream name no other test (or earlier run) uses, whose objects are unlinked on drop
/// (frame-vocab's shared fixture), claimed by this process.
fn claim(stream: &TestStream) -> StreamOwner {
    StreamOwner::claim(&stream.name).expect("claim test stream")
}

/// If this process is a child started for `role`, the stream it should work on.
fn child_role(role: &str) -> Option<StreamName> {
    if std::env::var(ROLE).ok()? != role {
        return None;
    }
    let stream = std::env::var(STREAM).expect("the parent names the stream");
    Some(stream.parse::<StreamName>().expect("valid stream name"))
}

/// Prints one protocol line for the parent.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}")
        .and_then(|()| out.flush())
        .expect("write to parent");
}

/// Reads one line from the parent (blocks: the parent always answers or kills us).
fn hear() -> String {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("read from parent");
    line.trim().to_owned()
}

/// A child process playing `role` in test `test`; killed and reaped on drop.
struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    pending: Vec<u8>,
}

impl Child {
    fn spawn(test: &str, role: &str, stream: &StreamName) -> Child {
        Child::try_spawn(test, role, stream, None).expect("spawn child")
    }

    /// Spawns the child, as `uid` (and the same gid) if given.
    fn try_spawn(
        test: &str,
        role: &str,
        stream: &StreamName,
        uid: Option<u32>,
    ) -> std::io::Result<Child> {
        let exe = std::env::current_exe()?;
        let mut process = Process::new(exe);
        process
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(STREAM, format!("{}/{}", stream.owner(), stream.as_str()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(uid) = uid {
            process.uid(uid).gid(uid);
        }
        let mut child = process.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        Ok(Child {
            child,
            stdin,
            stdout,
            pending: Vec::new(),
        })
    }

    /// The next `@@` line, without the prefix; panics if none comes by the deadline.
    fn line(&mut self, deadline: Deadline) -> String {
        loop {
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                // The harness may have begun a line ("test name ... ") before ours.
                if let Some((_, said)) = line.trim_end().split_once("@@ ") {
                    return said.to_owned();
                }
            }
            assert!(
                self.read_some(deadline) > 0,
                "the child ended without saying more; it said: {:?}",
                String::from_utf8_lossy(&self.pending)
            );
        }
    }

    /// Reads what the child wrote, waiting with `poll` until the deadline; 0 at its end.
    fn read_some(&mut self, deadline: Deadline) -> usize {
        loop {
            assert!(!deadline.expired(), "the child did not answer in time");
            let wait = PollTimeout::try_from(deadline.remaining().min(Duration::from_millis(100)))
                .expect("a short timeout");
            let mut fds = [PollFd::new(self.stdout.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => panic!("poll on the child's stdout: {e}"),
            }
        }
        let mut chunk = [0; 4096];
        let n = self
            .stdout
            .read(&mut chunk)
            .expect("read the child's stdout");
        self.pending.extend_from_slice(&chunk[..n]);
        n
    }

    fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to child");
    }

    /// Waits for the child to close its output and exit, and checks it succeeded.
    fn finish(mut self, deadline: Deadline) {
        self.stdin = None;
        while self.read_some(deadline) > 0 {}
        let status = self.child.wait().expect("wait for child");
        assert!(status.success(), "the child failed: {status}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process may exceed the mqueue limits (CAP_SYS_RESOURCE, bit 24).
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapEff in /proc/self/status");
    caps & (1 << 24) != 0
}

fn proc_limit(file: &str) -> u32 {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}"))
        .expect("read the mqueue limit")
        .trim()
        .parse()
        .expect("a number")
}

fn mode_of(fd: impl AsFd) -> u32 {
    fstat(fd).expect("fstat the queue").st_mode & 0o7777
}

/// Whether a queue of that name exists, probed with `mq_open` (/dev/mqueue may not be
/// mounted here).
fn queue_exists(name: &str) -> bool {
    match mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None) {
        Ok(mqd) => {
            mq_close(mqd).expect("close probe");
            true
        }
        Err(Errno::ENOENT) => false,
        Err(e) => panic!("probe {name}: {e}"),
    }
}

#[test]
fn created_queues_get_their_mode_whatever_the_umask() {
    if let Some(stream) = child_role("umask") {
        // umask is per process: change it only here, in a child of our own.
        let owner = StreamOwner::claim(&stream).expect("claim");
        umask(Mode::empty());
        let commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("create");
        assert_eq!(mode_of(&commands), 0o600, "default mode under umask 000");
        umask(Mode::from_bits_truncate(0o077));
        let shared = QueueConfig::new().mode(0o660);
        let events = EventSender::create(&owner, 0, &shared).expect("create");
        assert_eq!(mode_of(&events), 0o660, "0660 asked under umask 077");
        say("checked");
        return;
    }
    let stream = TestStream::new("cm");
    let mut child = Child::spawn(
        "created_queues_get_their_mode_whatever_the_umask",
        "umask",
        &stream.name,
    );
    let deadline = Deadline::after(HANG);
    assert_eq!(child.line(deadline), "checked");
    child.finish(deadline);
}

#[test]
fn refused_limits_are_named() {
    if let Some(stream) = child_role("limits") {
        // Run as another user, without CAP_SYS_RESOURCE: the kernel must refuse.
        assert!(!has_sys_resource());
        let owner = StreamOwner::claim(&stream).expect("claim");
        check_limits(&owner, true);
        say("refused");
        return;
    }
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let privileged = has_sys_resource();
    check_limits(&owner, !privileged);
    drop(owner);
    if geteuid().is_root() {
        // Root may exceed the limits; check the refusal as an unprivileged user too.
        match Child::try_spawn(
            "refused_limits_are_named",
            "limits",
            &stream.name,
            Some(NOBODY),
        ) {
            Ok(mut child) => {
                let deadline = Deadline::after(HANG);
                assert_eq!(child.line(deadline), "refused");
                child.finish(deadline);
            }
            Err(e) => eprintln!("cannot run this test binary as uid {NOBODY} ({e}); skipped"),
        }
    }
}

/// Asks for one message more than `fs.mqueue.msg_max` and a message size above
/// `fs.mqueue.msgsize_max`: refused with the limit named, or (when `must_refuse` is false,
/// i.e. with CAP_SYS_RESOURCE) possibly granted.
fn check_limits(owner: &StreamOwner, must_refuse: bool) {
    let msg_max = proc_limit("msg_max");
    let msgsize_max = proc_limit("msgsize_max");
    let many = QueueConfig::new().max_messages(msg_max + 1);
    match CommandReceiver::create(owner, &many) {
        Err(e @ CreateError::Limit { limit, .. }) => {
            assert_eq!(
                limit,
                KernelLimit::MaxMessages {
                    requested: msg_max + 1,
                    limit: msg_max.into()
                }
            );
            let text = e.to_string();
            assert!(text.contains("fs.mqueue.msg_max"), "{text}");
            assert!(text.contains(&owner.name().command_queue_name()), "{text}");
        }
        Ok(_) if !must_refuse => {}
        other => panic!("max messages {}: {other:?}", msg_max + 1),
    }
    let big = QueueConfig::new().message_size(msgsize_max + 808);
    match EventSender::create(owner, 0, &big) {
        Err(e @ CreateError::Limit { limit, .. }) => {
            assert_eq!(
                limit,
                KernelLimit::MessageSize {
                    requested: msgsize_max + 808,
                    limit: msgsize_max.into()
                }
            );
            assert!(e.to_string().contains("fs.mqueue.msgsize_max"), "{e}");
        }
        Ok(_) if !must_refuse => {}
        other => panic!("message size {}: {other:?}", msgsize_max + 808),
    }
}

#[test]
fn unusable_configs_are_refused_before_the_kernel() {
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    for config in [
        QueueConfig::new().max_messages(0),
        QueueConfig::new().message_size(MSG_SIZE as u32 - 1),
        QueueConfig::new().mode(0o4600),
    ] {
        let result = CommandReceiver::create(&owner, &config);
        assert!(
            matches!(result, Err(CreateError::Config { .. })),
            "{config:?}: {result:?}"
        );
    }
}

#[test]
fn missing_queues_are_not_found() {
    let stream = TestStream::new("cm");
    match CommandSender::open(&stream.name) {
        Err(e @ OpenError::NotFound { .. }) => {
            assert!(e.to_string().contains(&stream.name.command_queue_name()));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        EventReceiver::open(&stream.name, 3),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn another_user_gets_permission_denied() {
    if let Some(stream) = child_role("intruder") {
        match CommandSender::open(&stream) {
            Err(e @ OpenError::PermissionDenied { .. }) => {
                assert!(e.to_string().contains(&stream.command_queue_name()), "{e}");
            }
            other => panic!("{other:?}"),
        }
        say("denied");
        return;
    }
    if !geteuid().is_root() {
        eprintln!("needs root to act as another user; skipped");
        return;
    }
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let _commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("create");
    match Child::try_spawn(
        "another_user_gets_permission_denied",
        "intruder",
        &stream.name,
        Some(NOBODY),
    ) {
        Ok(mut child) => {
            let deadline = Deadline::after(HANG);
            assert_eq!(child.line(deadline), "denied");
            child.finish(deadline);
        }
        Err(e) => eprintln!("cannot run this test binary as uid {NOBODY} ({e}); skipped"),
    }
}

#[test]
fn owner_replaces_a_stale_queue_and_unlinks_on_drop() {
    let stream = TestStream::new("cm");
    let name = stream.name.command_queue_name();
    // A crashed producer's queue, with a message still in it.
    let attr = MqAttr::new(0, 4, MSG_SIZE as _, 0);
    let stale = mq_open(
        name.as_str(),
        MQ_OFlag::O_CREAT | MQ_OFlag::O_WRONLY,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .expect("create a stale queue");
    mq_send(&stale, &encoded(&Command::Shutdown), 0).expect("fill the stale queue");
    mq_close(stale).expect("close");

    let owner = claim(&stream);
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("replace");
    assert_eq!(commands.try_recv().expect("receive"), None, "a fresh queue");
    let mut sender = CommandSender::open(&stream.name).expect("open");
    assert_eq!(sender.send(&Command::Pause).expect("send"), Sent::Queued);
    assert_eq!(commands.try_recv().expect("receive"), Some(Command::Pause));

    assert!(queue_exists(&name));
    drop(commands);
    assert!(!queue_exists(&name), "the owner's drop unlinks the name");
    assert!(matches!(
        CommandSender::open(&stream.name),
        Err(OpenError::NotFound { .. })
    ));

    // A seat queue left by a producer that had more seats.
    let seat_name = stream.name.event_queue_name(2);
    let stale = mq_open(
        seat_name.as_str(),
        MQ_OFlag::O_CREAT | MQ_OFlag::O_WRONLY,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .expect("create a stale seat queue");
    mq_close(stale).expect("close");
    assert!(EventSender::remove_stale(&owner, 2).expect("remove"));
    assert!(!queue_exists(&seat_name));
    assert!(!EventSender::remove_stale(&owner, 2).expect("remove"));
}

#[test]
fn a_second_handle_sends_to_the_same_queue_and_unlinks_nothing() {
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let mut events = EventSender::create(&owner, 0, &QueueConfig::new()).expect("create");
    let mut second = events.second_handle().expect("second handle");
    let mut receiver = EventReceiver::open(&stream.name, 0).expect("open");
    assert_eq!(second.send(&Event::Stopping).expect("send"), Sent::Queued);
    assert_eq!(
        events.send(&Event::Pong { nonce: 3 }).expect("send"),
        Sent::Queued
    );
    assert_eq!(receiver.try_recv().expect("receive"), Some(Event::Stopping));
    assert_eq!(
        receiver.try_recv().expect("receive"),
        Some(Event::Pong { nonce: 3 })
    );
    let name = stream.name.event_queue_name(0);
    drop(second);
    assert!(
        queue_exists(&name),
        "the second handle does not own the name"
    );
    drop(events);
    assert!(!queue_exists(&name));
}

#[test]
fn receive_deadline_passes_with_none() {
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let mut events = EventSender::create(&owner, 1, &QueueConfig::new()).expect("create");
    let mut receiver = EventReceiver::open(&stream.name, 1).expect("open");
    assert_eq!(receiver.try_recv().expect("receive"), None);
    assert_eq!(
        receiver
            .recv_timeout(Duration::from_millis(20))
            .expect("receive"),
        None
    );
    assert_eq!(events.send(&Event::Stopping).expect("send"), Sent::Queued);
    assert_eq!(
        receiver
            .recv_deadline(Deadline::after(HANG))
            .expect("receive"),
        Some(Event::Stopping)
    );
    assert_eq!(receiver.stats().received, 1);
}

#[test]
fn full_event_queue_drops_and_counts_without_blocking() {
    const TEST: &str = "full_event_queue_drops_and_counts_without_blocking";
    if let Some(stream) = child_role("stalled-consumer") {
        let mut events = EventReceiver::open(&stream, 0).expect("open");
        say("ready");
        // Stall: read nothing until the parent has filled the queue.
        assert_eq!(hear(), "drain");
        let mut nonces = Vec::new();
        while let Some(event) = events.try_recv().expect("receive") {
            match event {
                Event::Pong { nonce } => nonces.push(nonce.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        say(&format!("got {}", nonces.join(" ")));
        return;
    }
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let mut events = EventSender::create(&owner, 0, &QueueConfig::new()).expect("create");
    let mut child = Child::spawn(TEST, "stalled-consumer", &stream.name);
    let deadline = Deadline::after(HANG);
    assert_eq!(child.line(deadline), "ready");

    // Send from a thread so that a send that blocked would fail this test, not hang it.
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || {
        let sent: Vec<Sent> = (0..25)
            .map(|nonce| events.send(&Event::Pong { nonce }).expect("send"))
            .collect();
        let _ = done.send((events, sent));
    });
    let (mut events, sent) = outcome
        .recv_timeout(deadline.remaining())
        .expect("a send blocked on a full queue");
    assert_eq!(sent[..10], [Sent::Queued; 10]);
    assert_eq!(sent[10..], [Sent::DroppedFull; 15]);
    let stats = events.stats();
    assert_eq!((stats.sent, stats.dropped_full), (10, 15));

    child.tell("drain");
    assert_eq!(child.line(deadline), "got 0 1 2 3 4 5 6 7 8 9");
    child.finish(deadline);
    assert_eq!(
        events.send(&Event::Pong { nonce: 99 }).expect("send"),
        Sent::Queued,
        "room again once drained"
    );
}

#[test]
fn full_command_queue_drops_at_the_sender() {
    const TEST: &str = "full_command_queue_drops_at_the_sender";
    if let Some(stream) = child_role("eager-consumer") {
        let mut commands = CommandSender::open(&stream).expect("open");
        for nonce in 0..25 {
            let _ = commands.send(&Command::Ping { nonce }).expect("send");
        }
        let stats = commands.stats();
        say(&format!(
            "sent {} dropped {}",
            stats.sent, stats.dropped_full
        ));
        return;
    }
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    // The producer stalls: it reads nothing until the child is done.
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("create");
    let mut child = Child::spawn(TEST, "eager-consumer", &stream.name);
    let deadline = Deadline::after(HANG);
    assert_eq!(child.line(deadline), "sent 10 dropped 15");
    child.finish(deadline);
    for nonce in 0..10 {
        assert_eq!(
            commands.try_recv().expect("receive"),
            Some(Command::Ping { nonce })
        );
    }
    assert_eq!(commands.try_recv().expect("receive"), None);
    assert_eq!(commands.stats().received, 10);
}

#[test]
fn garbage_is_rejected_counted_and_skipped() {
    const TEST: &str = "garbage_is_rejected_counted_and_skipped";
    if let Some(stream) = child_role("garbage-writer") {
        write_garbage(&stream);
        say("written");
        return;
    }
    let stream = TestStream::new("cm");
    let owner = claim(&stream);
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("create");
    let mut child = Child::spawn(TEST, "garbage-writer", &stream.name);
    let deadline = Deadline::after(HANG);
    assert_eq!(child.line(deadline), "written");
    child.finish(deadline);

    assert_eq!(
        commands.recv_deadline(deadline).expect("receive"),
        Some(Command::Ping { nonce: 42 }),
        "the good message after the garbage"
    );
    assert_eq!(commands.try_recv().expect("receive"), None);
    let stats = commands.stats();
    assert_eq!(stats.received, 1);
    assert_eq!(
        stats.rejected,
        Rejected {
            empty: 1,
            truncated: 1,
            bad_magic: 1,
            unsupported_version: 1,
            bad_checksum: 1,
            unknown_kind: 2,
            fps: 1,
            ..Rejected::default()
        }
    );
}

/// Writes eight invalid messages straight into the command queue with `mq_send`, then a
/// valid `Ping{42}`.
fn write_garbage(stream: &StreamName) {
    let name = stream.command_queue_name();
    let queue = mq_open(
        name.as_str(),
        MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK,
        Mode::empty(),
        None,
    )
    .expect("open the command queue raw");
    let ping = encoded(&Command::Ping { nonce: 7 });
    let pong = encoded(&Event::Pong { nonce: 7 });
    // Re-seals a patched message with a correct checksum, so only the patch is wrong.
    let reseal = |mut bytes: Vec<u8>| {
        let body_end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body_end]);
        bytes[body_end..].copy_from_slice(&crc.to_le_bytes());
        bytes
    };
    let mut future = ping.clone();
    future[4] = 2;
    let mut flipped = ping.clone();
    flipped[10] ^= 0x40;
    let mut unknown = ping.clone();
    unknown[5] = 0x7f;
    let mut nan_fps = ping.clone();
    nan_fps[5] = 0x03; // SetFps, whose body is an f64 like Ping's u64
    nan_fps[8..16].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());

    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xde\xad\xbe\xef garbage from a confused writer".to_vec(),
        ping[..10].to_vec(),
        future,
        flipped,
        reseal(unknown),
        pong,
        reseal(nan_fps),
    ];
    for bytes in garbage
        .iter()
        .chain([&encoded(&Command::Ping { nonce: 42 })])
    {
        mq_send(&queue, bytes, 0).expect("raw send");
    }
    mq_close(queue).expect("close");
    assert_eq!(
        control_msg::decode::<Command>(&garbage[1]),
        Err(DecodeError::BadMagic { found: 0xefbe_adde })
    );
}

fn encoded<M: Message>(msg: &M) -> Vec<u8> {
    let mut buf = [0; MSG_SIZE];
    let len = encode(msg, &mut buf).expect("encode");
    buf[..len].to_vec()
}

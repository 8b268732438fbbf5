//! The real `producer` binary, read with shm-frames' `Reader`: every source's frames arrive
//! intact, commands on the control queue work, bad input gets a clear error and exit code,
//! and a stop leaves nothing behind.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use control_msg::{Command as Ctl, CommandSender, Event, EventReceiver, Sent};
use frame_vocab::PatternKind;
use frame_vocab::verify;
use frame_vocab::{FrameFormat, PixelFormat};
use shm_frames::testing::{ChildProc, HANG, TempDir, TestStream};
use shm_frames::{Reader, ReaderOptions, WaitError, WaitStrategy};

fn producer_cmd(stream: &TestStream, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_producer"));
    cmd.arg("--stream")
        .arg(stream.name.as_str())
        .args(args)
        .env_remove("RUST_LOG");
    cmd
}

/// Starts the producer and waits for its `ready` line.
fn start(stream: &TestStream, args: &[&str]) -> ChildProc {
    let child = ChildProc::spawn(producer_cmd(stream, args));
    child.expect_contains("ready:", HANG);
    child
}

fn reader(stream: &TestStream) -> Reader {
    Reader::open(
        &stream.name,
        ReaderOptions {
            wait: HANG,
            strategy: WaitStrategy::Block,
            ..ReaderOptions::default()
        },
    )
    .expect("attach")
}

/// Runs the producer to completion with `stdin` fed in; returns (exit code, stderr).
fn run_to_end(stream: &TestStream, args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = producer_cmd(stream, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Y4M stream written by hand: `frames` 4:2:0 frames of `w`x`h`, each with distinct bytes.
fn y4m_clip(w: usize, h: usize, colour: &str, frames: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let size = w * h * 3 / 2;
    let frames: Vec<Vec<u8>> = (0..frames)
        .map(|i| (0..size).map(|b| (b * 13 + i * 71) as u8).collect())
        .collect();
    let mut out = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {colour}\n").into_bytes();
    for frame in &frames {
        out.extend_from_slice(b"FRAME\n");
        out.extend_from_slice(frame);
    }
    (out, frames)
}

#[test]
fn pattern_frames_verify_in_every_format() {
    for pixel in PixelFormat::ALL {
        let stream = TestStream::new("pf");
        let _producer = start(
            &stream,
            &["--size", "320x240", "--fps", "0", "--format", pixel.name()],
        );
        let mut reader = reader(&stream);
        let format = FrameFormat::new(320, 240, pixel).unwrap();
        assert_eq!(reader.format(), format);
        let mut last = 0;
        for _ in 0..20 {
            let frame = reader.wait_frame(HANG).unwrap();
            verify(format, &frame, frame.seq()).unwrap_or_else(|e| panic!("{pixel}: {e}"));
            assert!(frame.seq() > last);
            last = frame.seq();
        }
    }
}

#[test]
fn raw_frames_from_stdin_arrive_bit_identical_in_order() {
    let stream = TestStream::new("raw");
    let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
    let mut producer = start(
        &stream,
        &["--source", "raw:-", "--size", "64x48", "--fps", "0"],
    );
    let mut reader = reader(&stream);
    // Lockstep: one frame in, the same frame out, so none can be skipped.
    for i in 0..10u8 {
        let frame: Vec<u8> = (0..format.frame_bytes())
            .map(|b| (b as u8).wrapping_mul(i + 1))
            .collect();
        producer.send_bytes(&frame);
        let got = reader.wait_frame(HANG).unwrap();
        assert_eq!(got.seq(), u64::from(i) + 1);
        assert!(got[..] == frame[..], "frame {i} differs");
    }
    producer.close_stdin();
    assert!(matches!(
        reader.wait_frame(HANG).map(|f| f.seq()),
        Err(WaitError::Stopped)
    ));
    assert_eq!(producer.reap().code(), Some(0));
}

#[test]
fn y4m_from_stdin_arrives_bit_identical_in_order() {
    let stream = TestStream::new("y4s");
    let (clip, frames) = y4m_clip(64, 48, "C420jpeg", 8);
    let header_len = clip.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut producer =
        ChildProc::spawn(producer_cmd(&stream, &["--source", "y4m:-", "--fps", "0"]));
    producer.send_bytes(&clip[..header_len]);
    producer.expect_contains("ready:", HANG);
    let mut reader = reader(&stream);
    assert_eq!(
        reader.format(),
        FrameFormat::new(64, 48, PixelFormat::I420).unwrap()
    );
    for (i, frame) in frames.iter().enumerate() {
        producer.send_bytes(b"FRAME\n");
        producer.send_bytes(frame);
        let got = reader.wait_frame(HANG).unwrap();
        assert_eq!(got.seq(), i as u64 + 1);
        assert!(got[..] == frame[..], "frame {i} differs");
    }
    producer.close_stdin();
    assert_eq!(producer.reap().code(), Some(0));
}

#[test]
fn a_looped_y4m_file_plays_its_frames_in_order() {
    let stream = TestStream::new("y4f");
    let dir = TempDir::new("y4m");
    let path = dir.path.join("clip.y4m");
    let (clip, frames) = y4m_clip(32, 16, "C420mpeg2", 5);
    std::fs::write(&path, clip).unwrap();
    let source = format!("y4m:{}", path.display());
    let _producer = start(&stream, &["--source", &source, "--loop", "--fps", "200"]);
    let mut reader = reader(&stream);
    for _ in 0..20 {
        let got = reader.wait_frame(HANG).unwrap();
        let expected = &frames[(got.seq() as usize - 1) % frames.len()];
        assert!(
            got[..] == expected[..],
            "seq {} is not clip frame {}",
            got.seq(),
            got.seq() - 1
        );
    }
}

#[test]
fn commands_on_the_control_queue_take_effect() {
    let stream = TestStream::new("cmd");
    let mut producer = start(
        &stream,
        &["--size", "64x48", "--fps", "100", "--pattern", "bars"],
    );
    let mut reader = reader(&stream);
    let seat = reader.seat();
    let mut events = EventReceiver::open(&stream.name, seat).unwrap();
    let mut commands = CommandSender::open(&stream.name).unwrap();
    send(
        &mut commands,
        Ctl::Hello {
            seat,
            pid: std::process::id(),
        },
    );

    // Ping -> Pong on our seat's event queue (after a wake).
    send(&mut commands, Ctl::Ping { nonce: 77 });
    let pong = loop {
        match events.recv_timeout(HANG).unwrap().expect("an event") {
            Event::Pong { nonce } => break nonce,
            _ => continue,
        }
    };
    assert_eq!(pong, 77);

    // Every frame comes with its metadata.
    let frame_seq = reader.wait_frame(HANG).unwrap().seq();
    let meta = loop {
        match events.recv_timeout(HANG).unwrap().expect("an event") {
            Event::FrameMeta { seq, .. } if seq >= frame_seq => break seq,
            _ => continue,
        }
    };
    assert!(meta >= frame_seq);

    // SetFormat: the region is replaced, the reader follows it to the new format.
    let new = FrameFormat::new(32, 16, PixelFormat::I420).unwrap();
    send(&mut commands, Ctl::SetFormat(new));
    loop {
        match reader.wait_frame(HANG).map(|f| f.seq()) {
            Ok(_) => continue,
            Err(WaitError::Replaced) => break,
            Err(e) => panic!("{e}"),
        }
    }
    reader.reopen(HANG).unwrap();
    assert_eq!((reader.format(), reader.epoch()), (new, 2));
    drop(reader.wait_frame(HANG).unwrap());

    // Pause: the heartbeat goes on (no ProducerGone), no frames come.
    send(&mut commands, Ctl::SetPattern(PatternKind::Moving));
    send(&mut commands, Ctl::Pause);
    producer.expect_contains("paused", HANG);
    // A frame already in flight when the pause arrived may still come; then none.
    let mut in_flight = 0;
    while reader.wait_frame(Duration::from_millis(300)).is_ok() {
        in_flight += 1;
        assert!(in_flight < 3, "frames keep coming while paused");
    }
    let paused = reader
        .wait_frame(Duration::from_millis(1500))
        .map(|f| f.seq());
    assert!(matches!(paused, Err(WaitError::Timeout)), "{paused:?}");
    send(&mut commands, Ctl::Resume);
    let frame = reader.wait_frame(HANG).unwrap();
    verify(new, &frame, frame.seq()).unwrap();
    drop(frame);

    send(&mut commands, Ctl::Shutdown);
    assert_eq!(producer.reap().code(), Some(0));
    let end = loop {
        match reader.wait_frame(HANG) {
            Ok(_) => continue, // Frames published before the shutdown.
            Err(e) => break e,
        }
    };
    assert!(matches!(end, WaitError::Stopped), "{end}");
}

#[test]
fn a_source_blocked_on_stdin_never_looks_dead_and_sigterm_still_ends_it() {
    let stream = TestStream::new("blk");
    let mut producer = start(&stream, &["--source", "raw:-", "--size", "64x48"]);
    let mut reader = reader(&stream);
    // Longer than the 1 s heartbeat timeout: the heartbeat thread keeps the producer alive.
    let waited = reader
        .wait_frame(Duration::from_millis(1500))
        .map(|f| f.seq());
    assert!(matches!(waited, Err(WaitError::Timeout)), "{waited:?}");
    producer.terminate();
    assert_eq!(producer.reap().code(), Some(0));
    assert_objects_gone(&stream, 1);
}

#[test]
fn sigterm_leaves_no_object_behind() {
    let stream = TestStream::new("term");
    let mut producer = start(&stream, &["--size", "64x48", "--seats", "3"]);
    let reader = reader(&stream);
    assert!(std::path::Path::new(&stream.shm_path()).exists());
    assert!(queue_exists(&stream.name.command_queue_name()));
    producer.terminate();
    assert_eq!(producer.reap().code(), Some(0));
    drop(reader);
    assert_objects_gone(&stream, 3);
}

/// Sends a command; on this idle queue it must be queued, not dropped.
fn send(commands: &mut CommandSender, command: Ctl) {
    assert_eq!(
        commands.send(&command).unwrap(),
        Sent::Queued,
        "{command:?}"
    );
}

fn queue_exists(name: &str) -> bool {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
    match mq_open(
        name,
        MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    ) {
        Ok(q) => {
            let _ = mq_close(q);
            true
        }
        Err(nix::errno::Errno::ENOENT) => false,
        Err(e) => panic!("mq_open {name}: {e}"),
    }
}

fn assert_objects_gone(stream: &TestStream, seats: u32) {
    assert!(
        !std::path::Path::new(&stream.shm_path()).exists(),
        "region left behind"
    );
    assert!(
        !queue_exists(&stream.name.command_queue_name()),
        "command queue left behind"
    );
    for seat in 0..seats {
        assert!(
            !queue_exists(&stream.name.event_queue_name(seat)),
            "seat {seat} queue left"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let tmp = TempDir::new("bad");
    let dir = &tmp.path;
    let y444 = dir.join("444.y4m");
    std::fs::write(&y444, b"YUV4MPEG2 W4 H4 F25:1 C444\nFRAME\n").unwrap();
    let y444_arg = format!("y4m:{}", y444.display());
    let missing_dir = format!("images:{}", dir.join("nope").display());
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--source", "webcam"], 2, "webcam"),
        (&["--source", &missing_dir], 1, "nope"),
        (&["--source", &y444_arg], 1, "444"),
        (&["--size", "0x0"], 2, "zero dimension"),
        (&["--size", "100000x100000"], 2, "exceeds"),
        (&["--fps", "-1"], 2, "--fps -1"),
        (&["--seats", "99"], 2, "--seats 99"),
        (&["--stream", "a/b"], 2, "invalid stream name"),
    ];
    for (args, code, needle) in cases {
        let stream = TestStream::new("bad");
        let (got, stderr) = if args.contains(&"--stream") {
            let out = Command::new(env!("CARGO_BIN_EXE_producer"))
                .args(*args)
                .output()
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        } else {
            run_to_end(&stream, args, b"")
        };
        assert_eq!(got, *code, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!std::path::Path::new(&stream.shm_path()).exists());
    }
}

#[test]
fn a_truncated_raw_frame_is_an_error_after_the_whole_frames_were_published() {
    let stream = TestStream::new("trunc");
    let format = FrameFormat::new(16, 8, PixelFormat::Bgra).unwrap();
    let mut producer = ChildProc::spawn(producer_cmd(
        &stream,
        &["--source", "raw:-", "--size", "16x8"],
    ));
    producer.expect_contains("ready:", HANG);
    let mut reader = reader(&stream);
    let whole = vec![9u8; format.frame_bytes()];
    producer.send_bytes(&whole);
    let got = reader.wait_frame(HANG).unwrap();
    assert!(got[..] == whole[..], "the whole frame was published");
    drop(got);
    producer.send_bytes(&whole[..100]);
    producer.close_stdin();
    let line = producer.expect_contains("error", HANG);
    assert!(line.contains("truncated raw frame 2"), "{line}");
    assert_eq!(producer.reap().code(), Some(1));
}

#[test]
fn a_second_producer_on_the_same_stream_is_refused() {
    let stream = TestStream::new("two");
    let first = start(&stream, &["--size", "64x48"]);
    let (code, stderr) = run_to_end(&stream, &["--size", "64x48"], b"");
    assert_eq!(code, 1, "{stderr}");
    let expected = format!("already produced by pid {}", first.pid());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn images_arrive_as_drawn_and_other_sizes_are_scaled() {
    let tmp = TempDir::new("img");
    let dir = &tmp.path;
    // a.png at the stream size, with a distinct colour per pixel; b.png at another size.
    let exact =
        image::RgbImage::from_fn(32, 16, |x, y| image::Rgb([x as u8 * 8, y as u8 * 16, 200]));
    exact.save(dir.join("a.png")).unwrap();
    image::RgbImage::from_pixel(50, 70, image::Rgb([10, 20, 30]))
        .save(dir.join("b.png"))
        .unwrap();
    let stream = TestStream::new("img");
    let source = format!("images:{}", dir.display());
    let _producer = start(
        &stream,
        &["--source", &source, "--size", "32x16", "--fps", "100"],
    );
    let mut reader = reader(&stream);
    let (mut saw_a, mut saw_b) = (false, false);
    while !(saw_a && saw_b) {
        let frame = reader.wait_frame(HANG).unwrap();
        // Files loop in name order: odd seqs are a.png, even seqs b.png.
        if frame.seq() % 2 == 1 {
            for (i, px) in frame.chunks_exact(4).enumerate() {
                let rgb = exact.get_pixel(i as u32 % 32, i as u32 / 32).0;
                assert_eq!(px[..3], [rgb[2], rgb[1], rgb[0]], "pixel {i} (BGRA)");
            }
            saw_a = true;
        } else {
            assert!(frame.chunks_exact(4).all(|px| px[..3] == [30, 20, 10]));
            saw_b = true;
        }
    }
}

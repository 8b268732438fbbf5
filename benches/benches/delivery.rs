//! Every-frame delivery's cost: at 1920x1080 BGRA, as fast as the producer can go (`--fps
//! 0`), the frames/s of the every-frame pipeline against the newest-frame pipeline, the
//! producer alone and the consumer's per-frame work alone.
//!
//! The producer is this bench binary re-executed with [`ROLE`] set, pinned to another CPU
//! than the consumer (this process). Its per-frame work is what `--source raw:-` does: copy
//! a frame into the slot. The consumer's is what a detector does at the least: read every
//! byte of the frame (a checksum). Every-frame delivery lets the producer write frame n+1
//! while the consumer reads frame n, so the pipeline should run at the slower side's rate;
//! the goal is at least 0.9x of it.
//!
//! Criterion times each case per frame; then [`REPORT_ROUNDS`] rounds of [`REPORT_FRAMES`]
//! frames per case, the cases alternating, give the table (and the ratios) printed at the
//! end and written to `target/criterion/delivery-report.md`.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use frame_vocab::{FrameFormat, PixelFormat, StreamName, StreamOwner};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use shm_frames::testing::{ChildProc, TestStream};
use shm_frames::{Delivery, Reader, ReaderOptions, RegionBuilder, WaitError, Writer};

/// Set in the re-executed producer: the stream to create.
const ROLE: &str = "FRAMEPIPE_DELIVERY_STREAM";
/// The producer's frame count and CPU.
const FRAMES: &str = "FRAMEPIPE_DELIVERY_FRAMES";
const CPU: &str = "FRAMEPIPE_DELIVERY_CPU";

/// Frames per case in the one-run report, and its rounds.
const REPORT_FRAMES: u64 = 1000;
const REPORT_ROUNDS: usize = 5;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

fn main() {
    if let Ok(stream) = std::env::var(ROLE) {
        producer_role(&stream);
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (here, there) = (usize::from(cpus > 1), 0);
    pin(here);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let format = format();
    let mut group = c.benchmark_group("delivery_1080p");
    group.throughput(Throughput::Elements(1));
    group.bench_function("producer_alone", |b| {
        b.iter_custom(|iters| producer_alone(iters, (there, here)))
    });
    group.bench_function("consumer_work_alone", |b| {
        b.iter_custom(|iters| consumer_work_alone(format, iters))
    });
    for (case, delivery) in [
        ("every_frame_pipeline", Delivery::EveryFrame),
        ("newest_pipeline", Delivery::Newest),
    ] {
        group.bench_function(case, |b| {
            b.iter_custom(|iters| pipeline(delivery, iters, there).elapsed)
        });
    }
    group.finish();
    c.final_summary();
    report(format, (here, there));
}

fn format() -> FrameFormat {
    FrameFormat::new(WIDTH, HEIGHT, PixelFormat::Bgra).expect("a valid format")
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu index in range");
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// The producer's source frame: what `raw:-` would have read.
fn source_frame(format: FrameFormat) -> Vec<u8> {
    (0..format.frame_bytes()).map(|i| (i * 7) as u8).collect()
}

/// The producer's per-frame work: copy the source into the slot, stamp the seq.
fn produce(writer: &mut Writer, source: &[u8]) -> bool {
    let Some(mut slot) = writer.slot() else {
        return false;
    };
    let seq = slot.seq();
    slot.copy_from_slice(source);
    slot[..8].copy_from_slice(&seq.to_le_bytes());
    slot.publish(None);
    true
}

/// The consumer's per-frame work: read every byte (a checksum, as a detector would at
/// the least).
fn work(frame: &[u8]) -> u64 {
    frame.chunks_exact(8).fold(0u64, |sum, word| {
        sum.wrapping_add(u64::from_le_bytes(word.try_into().unwrap()))
    })
}

/// `frames` frames written and published with no consumer, on the CPU the pipeline's
/// producer uses (`cpus.0`; vCPUs of a shared VM need not run at one speed), then back on
/// the consumer's (`cpus.1`): the elapsed time.
fn producer_alone(frames: u64, cpus: (usize, usize)) -> Duration {
    pin(cpus.0);
    let stream = TestStream::new("dlv");
    let owner = StreamOwner::claim(&stream.name).expect("claim");
    let mut writer = RegionBuilder::new(&owner, format())
        .create()
        .expect("region");
    let source = source_frame(format());
    let start = Instant::now();
    for _ in 0..frames {
        produce(&mut writer, &source);
    }
    let elapsed = start.elapsed();
    pin(cpus.1);
    elapsed
}

/// The consumer's work over `frames` frames in private buffers (three, as the slots
/// rotate, so the cache sees what it sees in the pipeline).
fn consumer_work_alone(format: FrameFormat, frames: u64) -> Duration {
    let buffers: Vec<Vec<u8>> = (0..3).map(|_| source_frame(format)).collect();
    let start = Instant::now();
    for n in 0..frames {
        black_box(work(&buffers[(n % 3) as usize]));
    }
    start.elapsed()
}

/// One pipeline run, as the consumer saw it.
struct Run {
    /// From the consumer's first take to the producer's stop.
    elapsed: Duration,
    /// Frames the consumer took.
    taken: u64,
    /// Frames the producer published, and in how long.
    published: u64,
    producer_elapsed: Duration,
}

/// The producer child publishes `frames` frames as fast as it can once this process sits
/// on its seat, which takes them with `delivery`, doing [`work`] on each.
fn pipeline(delivery: Delivery, frames: u64, there: usize) -> Run {
    let stream = TestStream::new("dlv");
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.env(ROLE, stream.as_str())
        .env(FRAMES, frames.to_string())
        .env(CPU, there.to_string());
    let child = ChildProc::spawn(cmd);
    child.expect("ready", Duration::from_secs(30));
    let options = ReaderOptions {
        wait: Duration::from_secs(30),
        delivery,
        ..ReaderOptions::default()
    };
    let mut reader = Reader::open(&stream.name, options).expect("attach to the producer");
    let mut taken = 0u64;
    let mut start = None;
    loop {
        match reader.wait_frame(Duration::from_secs(30)) {
            Ok(frame) => {
                start.get_or_insert_with(Instant::now);
                black_box(work(&frame));
                taken += 1;
            }
            Err(WaitError::Stopped) => break,
            Err(e) => panic!("the pipeline broke: {e}"),
        }
    }
    let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
    let line = child.expect("published", Duration::from_secs(30));
    let mut words = line.split_whitespace().skip(1);
    let published = words.next().and_then(|n| n.parse().ok()).expect("count");
    let ns: u64 = words.next().and_then(|n| n.parse().ok()).expect("ns");
    Run {
        elapsed,
        taken,
        published,
        producer_elapsed: Duration::from_nanos(ns),
    }
}

/// The re-executed producer: creates the stream, waits for one live seat, publishes its
/// frames as fast as it can, says how long that took, and stops (its drop: Stopping).
fn producer_role(stream: &str) {
    let _ = set_pdeathsig(Signal::SIGKILL);
    let cpu = std::env::var(CPU)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pin(cpu);
    let frames: u64 = std::env::var(FRAMES)
        .expect("frames")
        .parse()
        .expect("a count");
    let name = StreamName::new(stream).expect("stream name");
    let owner = StreamOwner::claim(&name).expect("claim the bench stream");
    let mut writer = RegionBuilder::new(&owner, format())
        .stall_timeout(None)
        .create()
        .expect("region");
    let source = source_frame(format());
    println!("ready");
    let supervisor = writer.supervisor();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Nothing signals a claim; poll (before the first frame only).
    while !supervisor.seats().iter().any(|seat| seat.live) {
        assert!(Instant::now() < deadline, "no consumer came");
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    let mut published = 0;
    while published < frames {
        if produce(&mut writer, &source) {
            published += 1;
        }
    }
    let elapsed = start.elapsed();
    println!("published {published} {}", elapsed.as_nanos());
    drop(writer);
}

fn fps(frames: u64, elapsed: Duration) -> f64 {
    frames as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Each case once per round, rounds interleaved so that a change in the machine's speed
/// between cases (large on a shared VM) shows as spread between rounds instead of bending
/// one ratio; the table gives every round's ratio and their median.
fn report(format: FrameFormat, (here, there): (usize, usize)) {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "1920x1080 bgra, {REPORT_FRAMES} frames per case, {REPORT_ROUNDS} rounds alternating the cases, producer and consumer pinned apart, one run\n"
    ));
    line(
        "| round | producer alone | consumer's work alone | every-frame pipeline (taken) | newest-frame pipeline: consumer (taken), producer | every-frame / slower side alone |"
            .to_owned(),
    );
    line("|---|---:|---:|---:|---:|---:|".to_owned());
    let mut ratios = Vec::new();
    for round in 1..=REPORT_ROUNDS {
        let alone = producer_alone(REPORT_FRAMES, (there, here));
        let producer = fps(REPORT_FRAMES, alone);
        let consumer = fps(REPORT_FRAMES, consumer_work_alone(format, REPORT_FRAMES));
        let every = pipeline(Delivery::EveryFrame, REPORT_FRAMES, there);
        let newest = pipeline(Delivery::Newest, REPORT_FRAMES, there);
        let every_fps = fps(every.taken, every.elapsed);
        let ratio = every_fps / producer.min(consumer);
        ratios.push(ratio);
        line(format!(
            "| {round} | {producer:.0} fps | {consumer:.0} fps | {every_fps:.0} fps ({} of {}) | {:.0} fps ({} of {}), {:.0} fps | {ratio:.2} |",
            every.taken,
            every.published,
            fps(newest.taken, newest.elapsed),
            newest.taken,
            newest.published,
            fps(newest.published, newest.producer_elapsed),
        ));
    }
    ratios.sort_by(f64::total_cmp);
    line(String::new());
    line(format!(
        "every-frame / slower side alone: median {:.2}, range {:.2}-{:.2} (goal >= 0.9)",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    ));
    println!("\n## delivery report\n\n{out}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/criterion/delivery-report.md");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut file) = std::fs::File::create(&path) {
        let _ = file.write_all(out.as_bytes());
        println!("(written to {})", path.display());
    }
}

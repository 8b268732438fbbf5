//! The frame region across processes: handoff latency (publish → the consumer holds the
//! slot) per frame size and wait strategy, beside the bare primitives measured in the same
//! run (a process-shared semaphore wake-up, a spinning atomic), and full-frame throughput
//! beside one core writing a private buffer of the same size.
//!
//! The other process is this bench binary re-executed with [`ROLE`] set; the two are pinned
//! to different CPUs. Criterion times each case (mean handoff per iteration); a percentile
//! report (p50/p99 and the ratios the issue targets) is printed at the end and written to
//! `target/criterion/handoff-report.md`.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use frame_vocab::{Deadline, FrameFormat, PixelFormat, StreamName, StreamOwner, monotonic_ns};
use hdrhistogram::Histogram;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use shm_frames::testing::{ChildProc, Heartbeat, TestStream};
use shm_frames::{Reader, ReaderOptions, RegionBuilder, WaitStrategy};

/// Which role a re-executed child plays: `publisher`, `prober` or `filler`.
const ROLE: &str = "FRAMEPIPE_BENCH_ROLE";
const STREAM: &str = "FRAMEPIPE_BENCH_STREAM";
const SIZE: &str = "FRAMEPIPE_BENCH_SIZE";
const CPU: &str = "FRAMEPIPE_BENCH_CPU";

/// Time between two publishes in the latency cases: long enough that a blocking consumer
/// is asleep again when the next frame comes, so each sample is a real wake-up. The
/// publishers add up to 100 µs of jitter to it.
const GAP: Duration = Duration::from_micros(250);

/// Overrides [`GAP`] with a fixed period in µs, without jitter (`FRAMEPIPE_BENCH_PERIOD_US=
/// 5000` compares with `producer --fps 200`: on this VM a sleeping wake-up costs more the
/// longer the sleeper was idle, so only equal periods compare fairly).
const PERIOD: &str = "FRAMEPIPE_BENCH_PERIOD_US";

const SIZES: [(u32, u32); 3] = [(640, 480), (1920, 1080), (3840, 2160)];

/// The paced cases (`paced/<fps>/<strategy>`): a publisher on absolute deadlines at these
/// rates, 1920x1080, as a camera or `producer --fps` publishes.
const PACED_FPS: [u32; 3] = [30, 60, 120];

/// Seconds each paced case measures (`FRAMEPIPE_BENCH_PACED_SECS`, default 10).
const PACED_SECS: &str = "FRAMEPIPE_BENCH_PACED_SECS";

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (here, there) = (usize::from(cpus > 1), 0);
    pin(here);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut report = Report::default();
    bare(&mut c, &mut report, there);
    handoff(&mut c, &mut report, there);
    paced(&mut c, &mut report, there);
    throughput(&mut c, &mut report, there);
    c.final_summary();
    report.finish();
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu index in range");
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

fn bgra(width: u32, height: u32) -> FrameFormat {
    FrameFormat::new(width, height, PixelFormat::Bgra).expect("valid format")
}

/// This bench re-executed as `role` for frames of `size`, pinned to `cpu`, on a fresh
/// stream: shm-frames' fixtures kill the child (which also has PR_SET_PDEATHSIG) and unlink
/// the stream's objects on drop, in that order.
fn spawn_role(role: &str, size: (u32, u32), cpu: usize) -> (ChildProc, TestStream) {
    spawn_role_with(role, size, cpu, &[])
}

/// [`spawn_role`] with more environment for the child.
fn spawn_role_with(
    role: &str,
    size: (u32, u32),
    cpu: usize,
    envs: &[(&str, String)],
) -> (ChildProc, TestStream) {
    let stream = TestStream::new("bench");
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.env(ROLE, role)
        .env(STREAM, stream.as_str())
        .env(SIZE, format!("{}x{}", size.0, size.1))
        .env(CPU, cpu.to_string());
    (ChildProc::spawn(cmd), stream)
}

/// A reader on the stream a role child produces.
fn attach(stream: &TestStream, strategy: WaitStrategy) -> Reader {
    let options = ReaderOptions {
        wait: Duration::from_secs(30),
        strategy,
        ..ReaderOptions::default()
    };
    Reader::open(&stream.name, options).expect("attach to the bench child")
}

fn child(role: &str) {
    let _ = set_pdeathsig(Signal::SIGKILL);
    let cpu: usize = std::env::var(CPU)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pin(cpu);
    let stream = StreamName::new(&std::env::var(STREAM).expect("stream")).unwrap();
    let size = std::env::var(SIZE).expect("size");
    let (w, h) = size.split_once('x').expect("WxH");
    let format = bgra(w.parse().unwrap(), h.parse().unwrap());
    if role == "private-filler" {
        // Memory traffic without the pipeline: fill a private buffer forever.
        let mut private = vec![0u8; format.frame_bytes()];
        for n in 0u64.. {
            private.fill(n as u8);
            black_box(&private);
        }
    }
    let owner = StreamOwner::claim(&stream).expect("claim the bench stream");
    let period: Option<u64> = std::env::var(PERIOD).ok().and_then(|v| v.parse().ok());
    let mut builder = RegionBuilder::new(&owner, format);
    if let (Some(us), "paced") = (period, role) {
        builder = builder.nominal_fps(1e6 / us as f64);
    }
    let mut writer = builder.create().expect("create region");
    let supervisor = writer.supervisor();
    // Threads inherit this process's pinning.
    let _heartbeat = Heartbeat::start(supervisor.clone());
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut jittered_gap = || match period {
        Some(us) => Duration::from_micros(us),
        None => {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            GAP + Duration::from_micros(rng % 100)
        }
    };
    match role {
        // Publishes a frame every GAP, touching only its first bytes: the handoff alone.
        "publisher" => loop {
            std::thread::sleep(jittered_gap());
            if let Some(mut slot) = writer.slot() {
                let seq = slot.seq();
                slot[..8].copy_from_slice(&seq.to_le_bytes());
                slot.publish(None);
            }
        },
        // Publishes on absolute deadlines every PERIOD (a paced producer: no drift; its
        // timer's lateness is the stream's jitter), touching only the first bytes.
        "paced" => {
            let period = Duration::from_micros(period.expect("a paced role has a period"));
            let start = Instant::now();
            for n in 1u32.. {
                let due = start + period * n;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if let Some(mut slot) = writer.slot() {
                    let seq = slot.seq();
                    slot[..8].copy_from_slice(&seq.to_le_bytes());
                    slot.publish(None);
                }
            }
        }
        // The same pacing for the bare primitives: stamp the probe word and post.
        "paced-prober" => {
            let period = Duration::from_micros(period.expect("a paced role has a period"));
            let start = Instant::now();
            for n in 1u32.. {
                let due = start + period * n;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                supervisor.probe(0);
            }
        }
        // The bare primitives: stamp the probe word and post the semaphore every GAP.
        "prober" => loop {
            std::thread::sleep(jittered_gap());
            supervisor.probe(0);
        },
        // Fills every byte of every frame, as fast as it can.
        "filler" => loop {
            if let Some(mut slot) = writer.slot() {
                let seq = slot.seq();
                slot.fill(seq as u8);
                slot.publish(None);
            }
        },
        other => panic!("unknown bench role {other}"),
    }
}

/// Latency samples (ns) per case, and throughput per case, for the final report.
#[derive(Default)]
struct Report {
    latency: Vec<(String, Histogram<u64>)>,
    rates: Vec<(String, f64)>,
    /// The consumer's CPU per paced case: (cpu, wall) summed over its samples.
    cpu: Vec<(String, Duration, Duration)>,
}

impl Report {
    fn histogram(&mut self, case: &str) -> &mut Histogram<u64> {
        if !self.latency.iter().any(|(name, _)| name == case) {
            let h = Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("bounds");
            self.latency.push((case.to_owned(), h));
        }
        &mut self
            .latency
            .iter_mut()
            .find(|(name, _)| name == case)
            .unwrap()
            .1
    }

    fn quantile_us(&self, case: &str, q: f64) -> Option<f64> {
        let (_, h) = self.latency.iter().find(|(name, _)| name == case)?;
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    }

    fn cpu_percent(&self, case: &str) -> Option<f64> {
        let (_, cpu, wall) = self.cpu.iter().find(|(name, ..)| name == case)?;
        (!wall.is_zero()).then(|| 100.0 * cpu.as_secs_f64() / wall.as_secs_f64())
    }

    /// The paced cases as one table: handoff percentiles and the consumer's CPU.
    fn paced_table(&self) -> String {
        let mut out = String::from(
            "\n| 1920x1080 paced | wait | samples | p50 us | p99 us | p99.9 us | consumer CPU % of a core |\n|---|---|---|---|---|---|---|\n",
        );
        for fps in PACED_FPS {
            for case in PACED_CASES
                .iter()
                .map(|(c, _)| *c)
                .chain(["semaphore_wake"])
            {
                let name = format!("paced/{fps}fps/{case}");
                let Some((_, h)) = self.latency.iter().find(|(n, _)| *n == name) else {
                    continue;
                };
                let q = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                let cpu = self
                    .cpu_percent(&name)
                    .map_or("-".to_owned(), |c| format!("{c:.2}"));
                out.push_str(&format!(
                    "| {fps} fps | {case} | {} | {:.2} | {:.2} | {:.2} | {cpu} |\n",
                    h.len(),
                    q(0.5),
                    q(0.99),
                    q(0.999)
                ));
            }
        }
        out
    }

    /// The goals for Predict at 60 fps, met or not.
    fn paced_goals(&self) -> Vec<String> {
        let at = |case: &str, q: f64| self.quantile_us(&format!("paced/60fps/{case}"), q);
        let mut goals = Vec::new();
        if let (Some(p), Some(s)) = (at("predict", 0.5), at("spin", 0.5)) {
            goals.push(format!(
                "60 fps Predict p50 / Spin p50: {:.2} (goal <= 3): {}",
                p / s,
                met(p / s <= 3.0)
            ));
        }
        if let (Some(p), Some(b)) = (at("predict", 0.99), at("block", 0.99)) {
            goals.push(format!(
                "60 fps Predict p99 / Block p99: {:.2} (goal <= 0.2): {}",
                p / b,
                met(p / b <= 0.2)
            ));
        }
        if let Some(cpu) = self.cpu_percent("paced/60fps/predict") {
            goals.push(format!(
                "60 fps Predict consumer CPU: {cpu:.2}% of a core (goal <= 5%): {}",
                met(cpu <= 5.0)
            ));
        }
        goals
    }

    fn rate(&self, case: &str) -> Option<f64> {
        self.rates
            .iter()
            .find(|(name, _)| name == case)
            .map(|(_, r)| *r)
    }

    fn finish(&self) {
        let mut out = String::new();
        out.push_str("| case | samples | p50 us | p99 us | max us |\n|---|---|---|---|---|\n");
        for (name, h) in &self.latency {
            out.push_str(&format!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} |\n",
                h.len(),
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            ));
        }
        out.push_str("\n| throughput | frames/s |\n|---|---|\n");
        for (name, rate) in &self.rates {
            out.push_str(&format!("| {name} | {rate:.1} |\n"));
        }
        out.push_str(&self.paced_table());
        out.push_str("\nRatios (targets in parentheses):\n");
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let mut line = |label: &str, value: Option<f64>, target: &str| {
            if let Some(v) = value {
                out.push_str(&format!("- {label}: {v:.2} ({target})\n"));
            }
        };
        let sem50 = self.quantile_us("bare/semaphore_wake", 0.5);
        let sem99 = self.quantile_us("bare/semaphore_wake", 0.99);
        let spin50 = self.quantile_us("bare/spinning_atomic", 0.5);
        for (w, h) in SIZES {
            let block = format!("handoff/{w}x{h}/block");
            line(
                &format!("{w}x{h} Block p50 / semaphore p50"),
                ratio(self.quantile_us(&block, 0.5), sem50),
                "<= 1.5",
            );
            line(
                &format!("{w}x{h} Block p99 / semaphore p99"),
                ratio(self.quantile_us(&block, 0.99), sem99),
                "<= 2.5",
            );
            let spin = format!("handoff/{w}x{h}/spin");
            line(
                &format!("{w}x{h} Spin p50 / spinning atomic p50"),
                ratio(self.quantile_us(&spin, 0.5), spin50),
                "<= 3",
            );
        }
        for strategy in ["block", "spin"] {
            line(
                &format!("3840x2160 / 640x480 {strategy} p50"),
                ratio(
                    self.quantile_us(&format!("handoff/3840x2160/{strategy}"), 0.5),
                    self.quantile_us(&format!("handoff/640x480/{strategy}"), 0.5),
                ),
                "<= 1.3",
            );
        }
        line(
            "3840x2160 full write+read pipeline / private buffer writes",
            ratio(
                self.rate("throughput/pipeline"),
                self.rate("throughput/private_write"),
            ),
            ">= 0.8",
        );
        line(
            "3840x2160 pipeline / private reads beside private writes (same traffic)",
            ratio(
                self.rate("throughput/pipeline"),
                self.rate("throughput/private_read_beside_writer"),
            ),
            "1.0 = the pipeline costs nothing beyond the pixels",
        );
        for goal in self.paced_goals() {
            out.push_str(&format!("- {goal}\n"));
        }
        println!("\n## handoff report\n\n{out}");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/criterion/handoff-report.md");
        if let Ok(mut file) = std::fs::File::create(&path) {
            let _ = file.write_all(out.as_bytes());
            println!("(written to {})", path.display());
        }
    }
}

/// The bare primitives, in a region of the same kind: a semaphore wake-up and a spinning
/// atomic load, stamped by the other process just before it posts/stores.
fn bare(c: &mut Criterion, report: &mut Report, there: usize) {
    let (_child, stream) = spawn_role("prober", (64, 64), there);
    let mut group = c.benchmark_group("bare");
    for (case, spin) in [("semaphore_wake", false), ("spinning_atomic", true)] {
        let reader = attach(&stream, WaitStrategy::Block);
        let mut last = 0;
        latency(&mut group, report, &format!("bare/{case}"), case, || {
            let deadline = Deadline::after(Duration::from_secs(5));
            let stamp = if spin {
                reader.probe_spin(last, deadline)
            } else {
                reader.probe_wait(deadline)
            };
            let now = monotonic_ns();
            last = stamp.expect("the prober stopped");
            now.saturating_sub(last)
        });
    }
    group.finish();
}

/// Publish → held, per frame size and wait strategy.
fn handoff(c: &mut Criterion, report: &mut Report, there: usize) {
    for (w, h) in SIZES {
        let (_child, stream) = spawn_role("publisher", (w, h), there);
        let mut group = c.benchmark_group(format!("handoff/{w}x{h}"));
        for (case, strategy) in [
            ("block", WaitStrategy::Block),
            ("spin", WaitStrategy::Spin),
            (
                "spin_then_block_50us",
                WaitStrategy::SpinThenBlock(Duration::from_micros(50)),
            ),
        ] {
            let mut reader = attach(&stream, strategy);
            latency(
                &mut group,
                report,
                &format!("handoff/{w}x{h}/{case}"),
                case,
                || {
                    let frame = reader.wait_frame(Duration::from_secs(5)).expect("frame");
                    let info = frame.info();
                    black_box(frame[0]);
                    info.taken_ns.saturating_sub(info.publish_ns)
                },
            );
        }
        group.finish();
    }
}

/// The wait strategies of the paced cases.
const PACED_CASES: [(&str, WaitStrategy); 4] = [
    ("block", WaitStrategy::Block),
    ("spin", WaitStrategy::Spin),
    (
        "spin_then_block_50us",
        WaitStrategy::SpinThenBlock(Duration::from_micros(50)),
    ),
    ("predict", WaitStrategy::PREDICT),
];

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// CPU time of this thread (the consumer's: the bench's main thread waits) so far.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Publish → held at camera-like rates, per wait strategy, with the consumer's CPU, beside
/// the bare sleeping semaphore wake at the same rate. Criterion's warm-up doubles as the
/// time Predict learns the rhythm; its samples are recorded too.
fn paced(c: &mut Criterion, report: &mut Report, there: usize) {
    let secs: u64 = std::env::var(PACED_SECS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for fps in PACED_FPS {
        let period_us = (1_000_000 / fps).to_string();
        let envs = [(PERIOD, period_us)];
        let mut group = c.benchmark_group(format!("paced/{fps}fps"));
        group
            .sampling_mode(criterion::SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(secs));
        {
            let (_child, stream) = spawn_role_with("paced", (1920, 1080), there, &envs);
            for (case, strategy) in PACED_CASES {
                let mut reader = attach(&stream, strategy);
                let name = format!("paced/{fps}fps/{case}");
                paced_case(&mut group, report, &name, case, || {
                    loop {
                        let taken = reader.wait_frame(Duration::from_secs(5)).map(|frame| {
                            let info = frame.info();
                            black_box(frame[0]);
                            info.taken_ns.saturating_sub(info.publish_ns)
                        });
                        match taken {
                            Ok(ns) => return ns,
                            // A shared VM can starve the child's heartbeat thread for a second:
                            // attach again rather than lose the run (it shows in the log).
                            Err(e) => {
                                eprintln!("{name}: {e}; attaching again");
                                reader.reopen(Duration::from_secs(30)).expect("reattach");
                            }
                        }
                    }
                });
            }
        }
        let (_child, stream) = spawn_role_with("paced-prober", (64, 64), there, &envs);
        let reader = attach(&stream, WaitStrategy::Block);
        let name = format!("paced/{fps}fps/semaphore_wake");
        paced_case(&mut group, report, &name, "semaphore_wake", || {
            let stamp = reader.probe_wait(Deadline::after(Duration::from_secs(5)));
            monotonic_ns().saturating_sub(stamp.expect("the prober stopped"))
        });
        group.finish();
    }
}

/// [`latency`], also summing this thread's CPU time and the wall time over the samples.
/// Criterion is given the wall time (about one period per sample), so it plans the number
/// of samples by the stream's rate; the latencies go to the report only.
fn paced_case(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    report: &mut Report,
    name: &str,
    case: &str,
    mut sample: impl FnMut() -> u64,
) {
    let (mut cpu, mut wall) = (Duration::ZERO, Duration::ZERO);
    group.bench_function(case, |b| {
        b.iter_custom(|iters| {
            let (cpu0, wall0) = (thread_cpu(), Instant::now());
            for _ in 0..iters {
                let ns = sample();
                let _ = report.histogram(name).record(ns.max(1));
            }
            let elapsed = wall0.elapsed();
            cpu += thread_cpu().saturating_sub(cpu0);
            wall += elapsed;
            elapsed
        });
    });
    report.cpu.push((name.to_owned(), cpu, wall));
}

/// Benchmarks `sample` (one handoff per call, returning its latency in ns): criterion times
/// the latencies themselves, and each goes into the report's histogram `name`.
fn latency(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    report: &mut Report,
    name: &str,
    case: &str,
    mut sample: impl FnMut() -> u64,
) {
    group.bench_function(case, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ns = sample();
                let _ = report.histogram(name).record(ns.max(1));
                total += Duration::from_nanos(ns);
            }
            total
        });
    });
}

/// Sums a frame 8 bytes at a time: the consumer reads every byte.
fn read_all(frame: &[u8]) -> u64 {
    frame.chunks_exact(8).fold(0u64, |acc, w| {
        acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()))
    })
}

/// 3840x2160 frames written in full by the producer and read in full by the consumer,
/// beside one core writing a private buffer of the same size, and beside the same traffic
/// without the pipeline (private reads on this core while the other core writes).
fn throughput(c: &mut Criterion, report: &mut Report, there: usize) {
    let format = bgra(3840, 2160);
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));

    let mut private = vec![0u8; format.frame_bytes()];
    let mut n = 0u64;
    rate(&mut group, report, "private_write", || {
        n += 1;
        private.fill(n as u8);
        black_box(&private);
    });

    let child = spawn_role("filler", (3840, 2160), there);
    let mut reader = attach(&child.1, WaitStrategy::Block);
    rate(&mut group, report, "pipeline", || {
        let frame = reader.wait_frame(Duration::from_secs(5)).expect("frame");
        black_box(read_all(&frame));
    });
    drop(reader);
    drop(child);

    // The same memory traffic without the pipeline: this core reads a private buffer while
    // the other core fills another one. The pipeline cannot beat this; the gap between the
    // two is what the pipeline itself costs.
    let _writer = spawn_role("private-filler", (3840, 2160), there);
    rate(&mut group, report, "private_read_beside_writer", || {
        black_box(read_all(black_box(&private)));
    });
    group.finish();
}

/// Benchmarks `frame` (one frame's work per call) and records its rate, frames per second
/// of the time spent in it, as `throughput/<name>` for the report.
fn rate(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    report: &mut Report,
    name: &str,
    mut frame: impl FnMut(),
) {
    let (mut frames, mut busy) = (0u64, Duration::ZERO);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                frame();
            }
            let elapsed = start.elapsed();
            frames += iters;
            busy += elapsed;
            elapsed
        });
    });
    report.rates.push((
        format!("throughput/{name}"),
        frames as f64 / busy.as_secs_f64(),
    ));
}

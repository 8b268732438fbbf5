//! The "which mechanism when" matrix under criterion: handoff latency (one frame every
//! 5 ms) and flat-out throughput of every mechanism at every size, the private-write
//! ceiling, the wake-up primitives alone and the small-message round trips. The measuring
//! code is the `benches` library's, shared with `cargo run -p benches --bin report`, which
//! also runs the fan-out and writes the report.
//!
//! Criterion times latency cases by the handoffs themselves (`iter_custom` returns their
//! sum), while each one also waits out the 5 ms period; so each case's warm-up and
//! measurement times are set from a 10-sample pilot to about 30 and 100 handoffs, or a
//! case would take hundreds of periods per millisecond criterion asks for.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use benches::child::{cpus, pin, run_if_child};
use benches::error::Result;
use benches::matrix::{HandoffCase, MECHANISMS, ROLES};
use benches::roundtrip::{ROUND_TRIPS, RoundTripCase};
use benches::size::SIZES;
use benches::wake::{PRIMITIVES, WakeCase};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};

fn main() -> ExitCode {
    if let Some(code) = run_if_child(ROLES) {
        return code;
    }
    let (here, there) = cpus();
    pin(here).expect("pin the bench");
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    handoff(&mut c, there);
    throughput(&mut c, there);
    wakes(&mut c, there);
    round_trips(&mut c, there);
    c.final_summary();
    ExitCode::SUCCESS
}

/// Benchmarks one latency source: each iteration is one sample (ns), timed by its value.
fn latency(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    mut sample: impl FnMut() -> Result<u64>,
) {
    let pilot: u64 = (0..10)
        .map(|_| sample().expect("pilot sample"))
        .sum::<u64>()
        / 10;
    let per = Duration::from_nanos(pilot.max(100));
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(per * 30)
        .measurement_time(per * 100);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let total: u64 = (0..iters).map(|_| sample().expect("sample")).sum();
            Duration::from_nanos(total)
        })
    });
}

fn handoff(c: &mut Criterion, cpu: usize) {
    for mechanism in MECHANISMS {
        let mut group = c.benchmark_group(format!("handoff/{}", mechanism.label()));
        for size in SIZES {
            let mut case = HandoffCase::start(mechanism, size, false, cpu).expect("start the case");
            latency(&mut group, BenchmarkId::from_parameter(size.label), || {
                case.sample()
            });
        }
        group.finish();
    }
}

fn throughput(c: &mut Criterion, cpu: usize) {
    for mechanism in MECHANISMS {
        let mut group = c.benchmark_group(format!("throughput/{}", mechanism.label()));
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        for size in SIZES {
            let mut case = HandoffCase::start(mechanism, size, true, cpu).expect("start the case");
            group.throughput(Throughput::Bytes(size.bytes() as u64));
            group.bench_function(BenchmarkId::from_parameter(size.label), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    (0..iters).for_each(|_| case.frame().expect("frame"));
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
    let mut group = c.benchmark_group("throughput/ceiling: private writes");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for size in SIZES {
        let mut private = vec![0u8; size.bytes()];
        let mut n = 0u8;
        group.throughput(Throughput::Bytes(size.bytes() as u64));
        group.bench_function(BenchmarkId::from_parameter(size.label), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                private.fill(n);
                black_box(&mut private);
            })
        });
    }
    group.finish();
}

fn wakes(c: &mut Criterion, cpu: usize) {
    let mut group = c.benchmark_group("wake-up");
    for primitive in PRIMITIVES {
        let mut case = WakeCase::start(primitive, cpu).expect("start the case");
        latency(
            &mut group,
            BenchmarkId::from_parameter(primitive.label()),
            || case.sample(),
        );
    }
    group.finish();
}

fn round_trips(c: &mut Criterion, cpu: usize) {
    let mut group = c.benchmark_group("round-trip");
    for kind in ROUND_TRIPS {
        let mut case = RoundTripCase::start(kind, cpu).expect("start the case");
        latency(
            &mut group,
            BenchmarkId::from_parameter(kind.label()),
            || case.sample(),
        );
    }
    group.finish();
}

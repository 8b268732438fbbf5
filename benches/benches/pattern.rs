//! The test pattern's cost: frames per second of `PatternSource::render` (the issue asks
//! for >= 500 fps at 1920x1080 BGRA on one core) and of `verify` on the reader's side.
//!
//! `cargo bench -p benches --bench pattern`; criterion's `thrpt` is frames/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frame_vocab::PatternKind;
use frame_vocab::verify;
use frame_vocab::{FrameFormat, PixelFormat};
use producer::PatternSource;

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("pattern");
    group.throughput(Throughput::Elements(1));
    let cases = [
        (PatternKind::Moving, PixelFormat::Bgra),
        (PatternKind::Bars, PixelFormat::Bgra),
        (PatternKind::Moving, PixelFormat::Rgb24),
        (PatternKind::Moving, PixelFormat::Yuyv),
        (PatternKind::Moving, PixelFormat::I420),
        (PatternKind::Bars, PixelFormat::I420),
    ];
    for (kind, pixel) in cases {
        let format = FrameFormat::new(1920, 1080, pixel).expect("1080p is a valid format");
        let mut source = PatternSource::new(format, kind).expect("1080p carries a pattern");
        let mut frame = vec![0u8; format.frame_bytes()];
        let mut seq = 0u64;
        group.bench_function(format!("render/{kind}/1920x1080/{pixel}"), |b| {
            b.iter(|| {
                seq += 1;
                source.render(seq, black_box(&mut frame)).expect("render");
            })
        });
    }

    let format = FrameFormat::new(1920, 1080, PixelFormat::Bgra).expect("valid format");
    let mut source = PatternSource::new(format, PatternKind::Moving).expect("pattern");
    let mut frame = vec![0u8; format.frame_bytes()];
    source.render(42, &mut frame).expect("render");
    group.bench_function("verify/1920x1080/bgra", |b| {
        b.iter(|| verify(format, black_box(&frame), 42).expect("verifies"))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);

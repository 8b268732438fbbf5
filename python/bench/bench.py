"""Per-frame cost of the Python reader beside the Rust reader, and Writer frames/s.

Run by hand (not in CI), from a venv with the package installed:

    python python/bench/bench.py [--frames 2000]

- take: a frame is published (untimed), then the take alone is timed — the Rust reader's
  `wait_frame_owned` + drop, and the Python reader's `frame(timeout=0)` + `.array` +
  `close()` — so no wake-up is in the timed path. Both at 640x480 and 3840x2160 BGRA, in
  one run; reported as medians and p99 in microseconds.
- writer: 1920x1080 BGRA frames/s with `with w.frame()` (written in place: one byte
  touched, no copy) and with `w.publish(img)` (one full-frame copy).
"""

import argparse
import os
import statistics
import time

import numpy as np

import framepipe
from framepipe import _framepipe


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def python_take(width, height, frames):
    name = f"bench{os.getpid()}py{width}"
    times = []
    with framepipe.Writer(name, width, height) as writer, framepipe.Reader(name) as reader:
        for _ in range(frames):
            with writer.frame():
                pass
            start = time.perf_counter_ns()
            frame = reader.frame(timeout=0)
            frame.array
            frame.close()
            times.append(time.perf_counter_ns() - start)
    return times


def rust_take(width, height, frames):
    return _framepipe._bench_rust_take(f"bench{os.getpid()}rs{width}", width, height, frames)


def writer_rate(frames, copy):
    name = f"bench{os.getpid()}w{int(copy)}"
    image = np.random.default_rng(0).integers(0, 256, (1080, 1920, 4), dtype=np.uint8)
    with framepipe.Writer(name, 1920, 1080) as writer:
        start = time.perf_counter()
        for i in range(frames):
            if copy:
                writer.publish(image)
            else:
                with writer.frame() as buf:
                    buf[0, 0, 0] = i & 0xFF
        return frames / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    print(f"take, {args.frames} frames each (µs)        median    p99")
    medians = {}
    for width, height in [(640, 480), (3840, 2160)]:
        for who, take in [("rust", rust_take), ("python", python_take)]:
            times = take(width, height, args.frames)
            med = statistics.median(times) / 1000
            medians[(who, width)] = med
            print(f"  {who:6} {width}x{height:<5}               {med:7.2f} {pct(times, 0.99) / 1000:7.2f}")
    for width in (640, 3840):
        print(f"  python - rust at {width}: {medians[('python', width)] - medians[('rust', width)]:.2f} µs")
    print(
        "  python 3840x2160 / 640x480: "
        f"{medians[('python', 3840)] / medians[('python', 640)]:.2f}"
    )
    writer_frames = max(100, args.frames // 4)
    print(f"writer 1920x1080 bgra, {writer_frames} frames")
    print(f"  in place (no copy): {writer_rate(writer_frames, False):8.0f} frames/s")
    print(f"  publish (one copy): {writer_rate(writer_frames, True):8.0f} frames/s")


if __name__ == "__main__":
    main()

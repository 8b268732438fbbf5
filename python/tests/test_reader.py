"""The Python reader against the real producer binary."""

import os
import signal
import threading

import numpy as np
import pytest

import framepipe
from conftest import HANG, run_python


def test_pattern_verifies_and_none_is_torn(stream, producer):
    name = stream()
    producer(name, "--size", "320x240", "--fps", "0")
    taken = 0
    with framepipe.Reader(name, wait=5.0) as reader:
        last = 0
        while taken < 10_000:
            with reader.frame(timeout=5.0) as frame:
                framepipe.verify(frame.array, frame.frame_format, frame.seq)
                assert frame.seq > last
                last = frame.seq
            taken += 1
    assert taken == 10_000


@pytest.mark.parametrize(
    "pixel, shape, strides",
    [
        ("bgra", (48, 64, 4), (256, 4, 1)),
        ("rgb24", (48, 64, 3), (192, 3, 1)),
        ("gray8", (48, 64), (64, 1)),
        ("yuyv", (48, 64, 2), (128, 2, 1)),
        ("i420", (72, 64), (64, 1)),
    ],
)
def test_array_shape_per_format(stream, producer, pixel, shape, strides):
    name = stream()
    producer(name, "--size", "64x48", "--format", pixel, "--fps", "200")
    with framepipe.Reader(name) as reader, reader.frame(timeout=5.0) as frame:
        array = frame.array
        assert (array.shape, array.strides, array.dtype) == (shape, strides, np.uint8)
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array.flags.writeable = True
        framepipe.verify(array, (64, 48, pixel), frame.seq)
        planes = frame.planes
        if pixel == "i420":
            assert [p.shape for p in planes] == [(48, 64), (24, 32), (24, 32)]
            joined = np.concatenate([p.reshape(-1) for p in planes])
            assert np.array_equal(joined, array.reshape(-1))
        else:
            assert len(planes) == 1 and planes[0].shape == shape
        assert frame.format == pixel and (frame.width, frame.height) == (64, 48)
        assert frame.capture_ns <= frame.publish_ns


def shm_mapping(name: str):
    """(start, end) address ranges of this process's mappings of the stream's object."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(f"/dev/shm/framepipe.{os.geteuid()}.{name}"):
                start, end = line.split()[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


def test_array_is_the_slot_itself(stream, producer):
    name = stream()
    producer(name, "--size", "640x480", "--fps", "100")
    with framepipe.Reader(name) as reader, reader.frame(timeout=5.0) as frame:
        array = frame.array
        start = array.ctypes.data
        end = start + array.nbytes
        ranges = shm_mapping(name)
        assert ranges, "the stream's object is not mapped"
        assert any(lo <= start and end <= hi for lo, hi in ranges)
        assert type(array.base).__name__ == "FrameBuffer"
        copy = frame.copy()
        assert copy.flags.writeable and copy.flags.owndata
        assert not any(lo <= copy.ctypes.data < hi for lo, hi in ranges)
        assert np.array_equal(copy, array)


def test_a_live_view_refuses_the_next_frame(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "200")
    with framepipe.Reader(name) as reader:
        first = reader.frame(timeout=5.0)
        kept, seq = first.array, first.seq
        with pytest.raises(framepipe.FrameInUse, match="del"):
            reader.frame(timeout=5.0)
        assert reader.frame_in_use
        framepipe.verify(kept, "64x48 bgra", seq)  # the kept view still holds its slot
        del kept
        assert not reader.frame_in_use
        frame = reader.frame(timeout=5.0)
        copy = frame.copy()
        frame2 = reader.frame(timeout=5.0)  # a copy does not hold the slot
        assert frame.closed and not frame2.closed
        with pytest.raises(framepipe.Error, match="closed"):
            frame.array
        assert copy.shape == (48, 64, 4)


def test_iteration_ends_when_the_producer_stops(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "200")
    seqs = []
    with framepipe.Reader(name) as reader:
        for frame in reader:
            framepipe.verify(frame.array, frame.frame_format, frame.seq)
            seqs.append(frame.seq)
            if len(seqs) == 20:
                assert framepipe.Control(name).shutdown()
            assert len(seqs) < 100_000, "the loop did not end"
    assert len(seqs) >= 20 and seqs == sorted(seqs)


@pytest.mark.parametrize("strategy", ["spin", "predict"])
def test_every_strategy_follows_a_paced_stream(stream, producer, strategy):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "100", "--frames", "60")
    with framepipe.Reader(name, strategy=strategy, spin_budget=5.0) as reader:
        seqs = []
        for frame in reader:
            framepipe.verify(frame.array, frame.frame_format, frame.seq)
            seqs.append(frame.seq)
    assert seqs and seqs == sorted(set(seqs)) and seqs[-1] == 60


def test_bad_strategies_and_budgets_are_value_errors(stream):
    with pytest.raises(ValueError, match="unknown strategy"):
        framepipe.Reader(stream(), wait=0.1, strategy="nap")
    with pytest.raises(ValueError, match="spin_budget"):
        framepipe.Reader(stream(), wait=0.1, strategy="predict", spin_budget=101.0)


def test_no_producer(stream):
    with pytest.raises(framepipe.NoProducer, match="no producer"):
        framepipe.Reader(stream(), wait=0.2)


def test_timeout_while_the_producer_is_paused(stream, producer):
    name = stream()
    child = producer(name, "--size", "64x48", "--fps", "100")
    with framepipe.Reader(name) as reader:
        reader.frame(timeout=5.0).close()
        assert framepipe.Control(name).pause()
        child.wait_line("paused")
        with pytest.raises(framepipe.Timeout):
            # Drain what was published before the pause, then time out.
            for _ in range(10):
                reader.frame(timeout=0.3).close()


def test_kill_9_under_a_waiting_reader(stream, producer):
    name = stream()
    child = producer(name, "--size", "64x48", "--fps", "100")
    outcome = {}
    with framepipe.Reader(name, wait=1.0) as reader:
        reader.frame(timeout=5.0).close()
        assert framepipe.Control(name).pause()
        child.wait_line("paused")

        def wait_for_frames():
            try:
                while True:
                    reader.frame(timeout=HANG).close()
            except Exception as error:  # noqa: BLE001 - the outcome is what is tested
                outcome["error"] = error

        waiter = threading.Thread(target=wait_for_frames)
        waiter.start()
        child.kill(signal.SIGKILL)
        child.wait()
        waiter.join(HANG)
        assert not waiter.is_alive(), "the reader hangs after kill -9"
    assert isinstance(outcome["error"], framepipe.ProducerGone), outcome


def test_ctrl_c_interrupts_a_wait(stream, producer):
    name = stream()
    child = producer(name, "--size", "64x48", "--fps", "100")
    # A frame must be published before the pause, or the child's first wait has none.
    with framepipe.Reader(name) as first:
        first.frame(timeout=HANG).close()
    assert framepipe.Control(name).pause()
    child.wait_line("paused")
    code = (
        "import signal, sys, framepipe\n"
        "# A shell without job control starts background jobs with SIGINT ignored.\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "r = framepipe.Reader(sys.argv[1])\n"
        "try:\n"
        "    while True:\n"
        "        print('waiting', flush=True)\n"
        "        r.frame(timeout=60).close()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", code, name], stdout=subprocess.PIPE, text=True
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            # The first frame is there at once; the second 'waiting' waits on a paused stream.
            if lines.count("waiting") == 2:
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.communicate(timeout=HANG)[0]
        assert "interrupted" in rest.split()
    finally:
        proc.kill()
        proc.wait()


def test_verify_refuses_another_frame():
    with pytest.raises(framepipe.Corrupt):
        framepipe.verify(bytes(64 * 48 * 4), "64x48 bgra", 1)
    with pytest.raises(ValueError):
        framepipe.verify(b"", "64x48 nv12", 1)


def test_list_shows_the_stream(stream, producer):
    name = stream()
    child = producer(name, "--size", "64x48", "--format", "gray8", "--seats", "2", "--fps", "100")
    with framepipe.Reader(name) as reader:
        reader.frame(timeout=5.0)
        found = [s for s in framepipe.list() if s["name"] == name]
    assert len(found) == 1, found
    (entry,) = found
    assert {k: entry[k] for k in ("name", "width", "height", "format", "seats")} == {
        "name": name, "width": 64, "height": 48, "format": "gray8", "seats": 2,
    }
    assert entry["state"] == "live" and entry["live"] is True
    assert entry["producer_pid"] == child.proc.pid
    assert entry["seats_used"] == 1 and entry["epoch"] == 1
    assert entry["published"] >= 1 and entry["skipped"] == 0
    assert 0.0 <= entry["heartbeat_age"] < 1.0


def test_list_shows_a_killed_producers_leftover_and_garbage(stream, producer):
    import signal as signals

    dead, junk = stream(), stream()
    child = producer(dead, "--size", "64x48")
    child.kill(signals.SIGKILL)
    child.wait()
    with open(f"/dev/shm/framepipe.{os.geteuid()}.{junk}", "wb") as f:
        f.write(b"\x5a" * 8192)
    states = {s["name"]: s for s in framepipe.list()}
    assert states[dead]["state"] == "leftover" and states[dead]["live"] is False
    assert states[dead]["producer_pid"] is None
    assert states[junk]["state"] == "garbage" and "error" in states[junk]


def test_readme_snippet_runs_under_dev_mode(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "100")
    result = run_python(
        "import sys, framepipe\n"
        "with framepipe.Reader(sys.argv[1], wait=5.0) as r:\n"
        "    with r.frame(timeout=1.0) as f:\n"
        "        print(f.array.shape, f.seq > 0)\n",
        name,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(48, 64, 4) True"
    assert os.path.exists(f"/dev/shm/framepipe.{os.geteuid()}.{name}")


def test_every_frame_reader_takes_every_frame(stream, producer):
    name = stream()
    # Nothing is published until the reader sits; then as fast as the producer can go.
    producer(name, "--size", "64x48", "--fps", "0", "--frames", "300", "--wait-seats", "1")
    seqs = []
    with framepipe.Reader(name, every_frame=True) as reader:
        for frame in reader:
            framepipe.verify(frame.array, frame.frame_format, frame.seq)
            assert not frame.demoted and frame.skipped == 0
            seqs.append(frame.seq)
    assert seqs == list(range(1, 301))


def test_every_frame_is_refused_by_a_no_backpressure_producer(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--no-backpressure")
    with pytest.raises(framepipe.Error, match="does not offer every-frame delivery"):
        framepipe.Reader(name, every_frame=True, wait=0.5)
    # The refusal took no seat.
    with framepipe.Reader(name) as reader:
        assert reader.frame(timeout=5.0).seq >= 1


def test_control_gets_the_producers_answers(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "100")
    control = framepipe.Control(name)
    assert control.answers and control.timeout == 2.0
    assert control.pause() is True  # answered once the producer has parked
    with pytest.raises(framepipe.Refused, match="paused"):
        control.fps(30)
    assert control.resume() is True
    rtt = control.ping()
    assert isinstance(rtt, float) and 0.0 < rtt < HANG
    assert control.format(32, 24) == (2, "32x24 bgra")
    with framepipe.Reader(name) as reader:
        assert reader.stream_format == "32x24 bgra"
    with pytest.raises(ValueError):
        control.format(0, 0)
    assert control.shutdown() is True

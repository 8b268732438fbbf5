"""The Python writer: frames arrive bit-exact at the real consumer binary, which asks for
every frame (`--every-frame`), so the count and every byte are checked: BGRA through
`pipe` (record converts BGRA to 4:2:0), I420 through `record`.
"""

import os
import select
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

import framepipe
from conftest import HANG, binary


def read_exact(pipe, size: int, deadline: float = HANG) -> bytes:
    """Reads exactly `size` bytes from a child's pipe (fails at EOF or the deadline)."""
    chunks, got = [], 0
    end = time.monotonic() + deadline
    while got < size:
        ready, _, _ = select.select([pipe], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            pytest.fail(f"no frame data within {deadline} s ({got}/{size} bytes)")
        chunk = os.read(pipe.fileno(), size - got)
        if not chunk:
            pytest.fail(f"the consumer closed its output after {got}/{size} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def frames_of(shape, count):
    return [np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8) for i in range(count)]


def test_bgra_through_consumer_pipe_every_frame(stream, spawn):
    name = stream()
    frames = frames_of((48, 64, 4), 200)
    with framepipe.Writer(name, 64, 48, "bgra") as writer:
        consumer = spawn(
            [binary("consumer"), "pipe", "--every-frame", "--stream", name],
            stdout=subprocess.PIPE,
        )
        consumer.wait_line("attached")
        # Read beside the publishing: a full pipe would stall the consumer.
        received = []
        drain = threading.Thread(target=lambda: received.append(consumer.proc.stdout.read()))
        drain.start()
        for i, image in enumerate(frames):
            if i % 2:
                assert writer.publish(image) == i + 1
            else:
                with writer.frame() as buf:  # written in place, no copy
                    buf[:] = image
        assert writer.published == len(frames)
    assert consumer.wait() == 0, consumer.seen
    drain.join(HANG)
    assert received[0] == b"".join(f.tobytes() for f in frames), "every frame, bit-exact"


def parse_y4m(data: bytes, frame_bytes: int):
    header, _, rest = data.partition(b"\n")
    assert header.startswith(b"YUV4MPEG2 ")
    frames = []
    while rest:
        line, _, rest = rest.partition(b"\n")
        assert line.startswith(b"FRAME")
        frames.append(rest[:frame_bytes])
        rest = rest[frame_bytes:]
    return header, frames


def test_i420_through_consumer_record_bit_exact(stream, spawn, tmp_path):
    name = stream()
    out = tmp_path / "clip.y4m"
    frames = frames_of((72, 64), 200)
    with framepipe.Writer(name, 64, 48, "i420") as writer:
        consumer = spawn(
            [binary("consumer"), "record", str(out), "--every-frame", "--stream", name]
        )
        consumer.wait_line("attached")
        for image in frames:
            writer.publish(image)
    assert consumer.wait() == 0, consumer.seen
    header, recorded = parse_y4m(out.read_bytes(), 64 * 48 * 3 // 2)
    assert b"W64 H48" in header and b"C420" in header
    assert recorded == [f.tobytes() for f in frames], "every frame, bit-exact, in order"


def test_publish_checks_shape_and_dtype(stream):
    with framepipe.Writer(stream(), 64, 48, "bgra") as writer:
        assert writer.shape == [48, 64, 4]
        with pytest.raises(ValueError, match=r"shape \(48, 64, 4\).*got a uint8 array of shape \(48, 64, 3\)"):
            writer.publish(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(ValueError, match="float32"):
            writer.publish(np.zeros((48, 64, 4), np.float32))
        with pytest.raises(ValueError, match="got list"):
            writer.publish([1, 2, 3])
        assert writer.published == 0


def test_a_writable_view_ends_with_its_block(stream):
    name = stream()
    with framepipe.Writer(name, 64, 48, "gray8") as writer, framepipe.Reader(name) as reader:
        with writer.frame() as buf:
            buf[:] = 3
        assert not buf.flags.writeable
        with pytest.raises(ValueError):
            buf.flags.writeable = True
        with reader.frame(timeout=5.0) as frame:
            assert (frame.array == 3).all()

        with pytest.raises(framepipe.FrameInUse, match="not published"):
            with writer.frame() as buf:
                buf[:] = 4
                escaped = buf[10:]
        with pytest.raises(framepipe.FrameInUse, match="still alive"):
            with writer.frame():
                pass
        with pytest.raises(framepipe.Timeout):
            reader.frame(timeout=0.2)  # nothing was published
        del escaped
        with writer.frame() as buf:
            buf[:] = 5
        with reader.frame(timeout=5.0) as frame:
            assert (frame.array == 5).all() and frame.seq == 2

        with pytest.raises(RuntimeError):
            with writer.frame() as buf:
                buf[:] = 6
                raise RuntimeError("not published")
        with pytest.raises(framepipe.Timeout):
            reader.frame(timeout=0.2)


def test_a_slow_python_loop_keeps_the_stream_alive(stream):
    name = stream()
    with framepipe.Writer(name, 64, 48) as writer, framepipe.Reader(name, wait=0.5) as reader:
        writer.publish(np.zeros((48, 64, 4), np.uint8))
        reader.frame(timeout=5.0).close()
        # 1.5 s without a frame: longer than the heartbeat timeout (1 s). The service
        # thread beats, so this is a Timeout, not ProducerGone.
        with pytest.raises(framepipe.Timeout):
            reader.frame(timeout=1.5)
        assert writer.consumers and writer.consumers[0][2]


def wait_until(condition, what):
    end = time.monotonic() + HANG
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what} did not happen within {HANG} s")
        time.sleep(0.005)


def test_control_commands_reach_a_python_writer(stream):
    name = stream()
    image = np.zeros((48, 64, 4), np.uint8)
    with framepipe.Writer(name, 64, 48) as writer, framepipe.Reader(name) as reader:
        control = framepipe.Control(name)
        assert not control.answers  # a Python writer takes commands, answers none
        assert control.pause()
        wait_until(lambda: writer.paused, "Pause")
        assert writer.publish(image) is None and writer.dropped_paused == 1
        assert control.resume() and control.fps(12.5)
        wait_until(lambda: not writer.paused and writer.requested_fps == 12.5, "Resume+SetFps")
        assert writer.publish(image) == 1
        reader.frame(timeout=5.0).close()
        assert control.shutdown()
        with pytest.raises(framepipe.ProducerGone):
            reader.frame(timeout=HANG)  # the stream stops at once, whatever Python does
        with pytest.raises(framepipe.ProducerGone, match="Shutdown"):
            writer.publish(image)
    assert not os.path.exists(f"/dev/shm/framepipe.{os.geteuid()}.{name}")


def test_control_without_producer(stream):
    with pytest.raises(framepipe.NoProducer):
        framepipe.Control(stream())


def test_writer_refuses_a_taken_name(stream):
    name = stream()
    with framepipe.Writer(name, 64, 48):
        with pytest.raises(framepipe.Error, match="already produced"):
            framepipe.Writer(name, 64, 48)
    with framepipe.Writer(name, 64, 48):  # released on close
        pass


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="SKIPPED: no ffmpeg")
def test_opencv_publishes_a_clip_the_consumer_receives(stream, spawn, tmp_path):
    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "clip.avi"
    # PNG in AVI: lossless, so ffmpeg's own decode is the reference for the content.
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=25", "-frames:v", "30", "-c:v", "png", str(clip)],
        check=True, timeout=HANG,
    )
    reference = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(clip), "-f", "rawvideo",
         "-pix_fmt", "bgr0", "-"],
        check=True, capture_output=True, timeout=HANG,
    ).stdout
    size = 160 * 120 * 4
    assert len(reference) == 30 * size
    name = stream()
    capture = cv2.VideoCapture(str(clip))
    received = []
    with framepipe.Writer(name, 160, 120, "bgra") as writer:
        consumer = spawn([binary("consumer"), "pipe", "--stream", name], stdout=subprocess.PIPE)
        consumer.wait_line("attached")
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            with writer.frame() as buf:
                cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA, dst=buf)
            received.append(read_exact(consumer.proc.stdout, size))
    assert consumer.wait() == 0
    assert len(received) == 30
    for i, frame in enumerate(received):
        got = np.frombuffer(frame, np.uint8).reshape(120, 160, 4)[..., :3]
        want = np.frombuffer(reference[i * size:(i + 1) * size], np.uint8).reshape(120, 160, 4)[..., :3]
        assert np.array_equal(got, want), f"frame {i} differs"


def test_a_frame_entered_but_never_exited_is_abandoned(stream):
    name = stream()
    with framepipe.Writer(name, 64, 48, "gray8") as writer, framepipe.Reader(name) as reader:
        frame = writer.frame()
        buf = frame.__enter__()
        buf[:] = 9
        del frame  # never exited: nothing is published, the view is read-only now
        assert not buf.flags.writeable
        del buf
        with pytest.raises(framepipe.Timeout):
            reader.frame(timeout=0.2)
        with writer.frame() as buf:
            buf[:] = 2
        with reader.frame(timeout=5.0) as got:
            assert (got.array == 2).all() and got.seq == 1

"""The dangerous lifetime cases, each in a fresh interpreter under `python -X dev`."""

import signal

import framepipe  # noqa: F401 - the package must import before the scripts run
from conftest import HANG, run_python

PRELUDE = """
import gc, os, sys
import numpy as np
import framepipe
name = sys.argv[1]
"""


def run(code, name):
    result = run_python(PRELUDE + code, name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK"), result.stdout + result.stderr
    return result


def test_view_in_a_list_from_a_function_and_after_del_of_the_reader(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "200", "--seats", "2")
    run(
        """
FMT = "64x48 bgra"
r = framepipe.Reader(name)
kept = []
f = r.frame(timeout=5)
kept.append((f.array, f.seq))
try:
    r.frame(timeout=5)
    raise SystemExit("a live view in a list did not refuse the next frame")
except framepipe.FrameInUse:
    pass
framepipe.verify(kept[0][0], FMT, kept[0][1])
kept.clear(); gc.collect()
g = r.frame(timeout=5)
framepipe.verify(g.array, FMT, g.seq)
g.close()

def grab():
    with framepipe.Reader(name, wait=5) as reader:
        frame = reader.frame(timeout=5)
        return frame.array, frame.seq      # outlives the with, the frame and the reader

view, seq = grab(); gc.collect()
framepipe.verify(view, FMT, seq)

f = r.frame(timeout=5); view2, seq2 = f.planes[0], f.seq
del f, r; gc.collect()                      # the reader goes while a view lives
framepipe.verify(view2, FMT, seq2)
framepipe.verify(view, FMT, seq)
del view, view2; gc.collect()
print("OK")
""",
        name,
    )


def test_producer_restart_under_a_kept_view(stream, producer, spawn):
    name = stream()
    first = producer(name, "--size", "64x48", "--fps", "200")
    script = PRELUDE + """
FMT = "64x48 bgra"
r = framepipe.Reader(name, wait=10)
f = r.frame(timeout=5)
view, seq, epoch = f.array, f.seq, f.epoch
print("HOLDING", flush=True)
sys.stdin.readline()                         # the producer was restarted meanwhile
framepipe.verify(view, FMT, seq)             # the old mapping and hold live on
try:
    r.frame(timeout=5)
    raise SystemExit("no FrameInUse while the view lives")
except framepipe.FrameInUse:
    pass
del view, f; gc.collect()
for _ in range(10_000):                      # the old region's last frames come first,
    g = r.frame(timeout=10)                  # then it follows the new producer
    framepipe.verify(g.array, FMT, g.seq)
    if r.stats[2] >= 1:
        break
assert r.stats[2] >= 1, r.stats              # it reopened: a new region
print("OK", flush=True)
"""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-X", "dev", "-c", script, name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "HOLDING"
        first.kill(signal.SIGTERM)
        first.wait()
        producer(name, "--size", "64x48", "--fps", "200")
        out, err = proc.communicate("go\n", timeout=HANG)
        assert proc.returncode == 0, out + err
        assert out.strip().endswith("OK"), out + err
    finally:
        proc.kill()
        proc.wait()


def test_fork_poisons_the_child_and_spares_the_parent(stream, producer):
    name = stream()
    producer(name, "--size", "64x48", "--fps", "200")
    run(
        """
FMT = "64x48 bgra"
r = framepipe.Reader(name)
f = r.frame(timeout=5)
view, seq = f.array, f.seq
pid = os.fork()
if pid == 0:
    code = 0
    try:
        r.frame(timeout=1)
        code = 3                             # the child must not use the parent's seat
    except framepipe.FrameInUse:
        code = 4
    except framepipe.Error as e:
        code = 0 if "os.fork()" in str(e) else 5
    framepipe.verify(view, FMT, seq)         # reading inherited memory is harmless
    del r, f, view; gc.collect()             # must leak, not release the parent's hold
    sys.stdout.flush()
    os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
framepipe.verify(view, FMT, seq)
assert r.frame_in_use
del view, f; gc.collect()
for _ in range(20):                          # the parent's seat still works
    g = r.frame(timeout=5)
    framepipe.verify(g.array, FMT, g.seq)
w = framepipe.Writer(name + "w", 64, 48)
pid = os.fork()
if pid == 0:
    try:
        w.publish(np.zeros((48, 64, 4), np.uint8)); code = 3
    except framepipe.Error:
        code = 0
    del w; gc.collect()                      # must not end the parent's stream
    os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert w.publish(np.zeros((48, 64, 4), np.uint8)) == 1
w.close()
print("OK")
""",
        name,
    )


def test_writer_views_and_gc(stream):
    name = stream()
    run(
        """
w = framepipe.Writer(name, 64, 48, "rgb24")
with w.frame() as buf:
    buf[:] = 1
kept = buf
w.close()                                    # the view's mapping outlives the writer
assert int(kept.sum()) == 64 * 48 * 3
del kept, buf
w2 = framepipe.Writer(name, 64, 48)
with w2.frame() as buf:
    pass
del w2; gc.collect()                         # garbage collection ends the stream
assert not os.path.exists(f"/dev/shm/framepipe.{os.geteuid()}.{name}")
w3 = framepipe.Writer(name, 64, 48)          # and released the name
w3.close()
print("OK")
""",
        name,
    )

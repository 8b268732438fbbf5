"""Fixtures: unique stream names, the real producer/consumer binaries, clean-up.

Every child is killed and every /dev/shm/framepipe.<name> of the test is unlinked at the
end, so a crashed run never breaks the next. Nothing here sleeps to synchronise: helpers
wait for a line on a child's stderr, with a deadline that only catches hangs.
"""

import ctypes
import ctypes.util
import itertools
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("FRAMEPIPE_BIN", REPO / "target" / "release"))
HANG = 30.0  # seconds: a deadline that only catches hangs
_counter = itertools.count()


def binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release -p producer -p consumer`")
    return str(path)


class Child:
    """A child process whose stderr lines are collected by a thread."""

    def __init__(self, args, stdout=subprocess.DEVNULL, env=None):
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdout=stdout,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "info", **(env or {})},
        )
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stderr:
            self.lines.put(raw.decode(errors="replace"))
        self.lines.put(None)

    def wait_line(self, needle: str, deadline: float = HANG) -> str:
        """Returns the first stderr line containing `needle` (fails at EOF or deadline)."""
        while True:
            try:
                line = self.lines.get(timeout=deadline)
            except queue.Empty:
                pytest.fail(f"no {needle!r} from {self.args} within {deadline} s: {self.seen}")
            if line is None:
                pytest.fail(f"{self.args} ended without {needle!r}: {self.seen}")
            self.seen.append(line)
            if needle in line:
                return line

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, deadline: float = HANG) -> int:
        return self.proc.wait(timeout=deadline)


@pytest.fixture
def stream(request):
    """A unique stream name; its shm object is unlinked afterwards."""
    names = []

    def make():
        name = f"pyt{os.getpid()}-{next(_counter)}"
        names.append(name)
        return name

    request.addfinalizer(lambda: [_unlink(n) for n in names])
    return make


_librt = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)


def _unlink(name: str):
    """Unlinks the stream's shm object and its queues (a killed producer leaves them)."""
    try:
        os.unlink(f"/dev/shm/framepipe.{os.geteuid()}.{name}")
    except FileNotFoundError:
        pass
    for queue_name in [f"/framepipe.{os.geteuid()}.{name}.ctl"] + [f"/framepipe.{os.geteuid()}.{name}.s{k}" for k in range(16)]:
        _librt.mq_unlink(queue_name.encode())  # ENOENT for most: fine


@pytest.fixture
def spawn():
    """Starts children (killed afterwards): spawn(args, stdout=...)."""
    children = []

    def start(args, **kwargs):
        child = Child(args, **kwargs)
        children.append(child)
        return child

    yield start
    for child in children:
        # SIGTERM first: a producer then unlinks its objects itself.
        child.kill(signal.SIGTERM)
        try:
            child.wait(HANG)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(HANG)


@pytest.fixture
def producer(spawn):
    """producer(name, *args): the real producer, returned once it logged "ready"."""

    def start(name, *args):
        child = spawn([binary("producer"), "--stream", name, *args])
        child.wait_line("ready")
        return child

    return start


def run_python(code: str, *args: str, dev: bool = True, timeout: float = HANG * 2):
    """Runs `code` in a fresh interpreter (under `-X dev` by default)."""
    flags = ["-X", "dev"] if dev else []
    return subprocess.run(
        [sys.executable, *flags, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )

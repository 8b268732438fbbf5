"""Type stubs of the Rust extension (re-exported by ``framepipe``)."""

from types import TracebackType
from typing import Iterator, Literal

import numpy as np
import numpy.typing as npt

PixelFormat = Literal["bgra", "rgb24", "gray8", "yuyv", "i420"]
Strategy = Literal["block", "spin", "predict"]
FrameFormatLike = str | tuple[int, int, str]

class Error(Exception):
    """Base class of every framepipe error."""

class NoProducer(Error):
    """No producer publishes the stream (none appeared within ``wait``)."""

class ProducerGone(Error):
    """The producer died, hangs or stopped, and none came back within ``wait``."""

class Timeout(Error):
    """No new frame arrived within the timeout while the producer is alive."""

class PermissionDenied(Error):
    """A stream object belongs to another user, or its mode excludes this one."""

class Corrupt(Error):
    """The stream's shared memory holds a value no honest producer writes."""

class FrameInUse(Error):
    """A numpy view of the previous frame is still alive: ``del`` it or use ``copy()``."""

class Refused(Error):
    """The producer refused a command, with its reason (paused, unsupported, invalid...)."""

class Frame:
    """One frame a :class:`Reader` took: metadata and zero-copy, read-only numpy views.

    The views keep the frame's slot held (the producer never writes a held slot) for as
    long as any of them lives, even after :meth:`close`; while one lives the reader
    refuses the next frame with :class:`FrameInUse`.
    """

    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """The whole frame, read-only, over the slot itself: ``(H, W, 4)`` bgra,
        ``(H, W, 3)`` rgb24, ``(H, W)`` gray8, ``(H, W, 2)`` yuyv, ``(H * 3 // 2, W)``
        i420 (OpenCV's layout; see :attr:`planes`)."""
    @property
    def planes(self) -> tuple[npt.NDArray[np.uint8], ...]:
        """``(Y, U, V)`` for i420, ``(array,)`` for the other formats."""
    def copy(self) -> npt.NDArray[np.uint8]:
        """An owned, writable copy of :attr:`array`."""
    def close(self) -> None:
        """Drop this frame's own reference to its slot (views keep it until they go)."""
    @property
    def closed(self) -> bool:
        """Whether the frame was closed (or replaced by the reader's next frame)."""
    @property
    def seq(self) -> int:
        """Sequence number (1, 2, ... since the producer started)."""
    @property
    def capture_ns(self) -> int:
        """Capture time, CLOCK_MONOTONIC ns (as ``time.monotonic_ns()``)."""
    @property
    def publish_ns(self) -> int:
        """Publish time, CLOCK_MONOTONIC ns."""
    @property
    def skipped(self) -> int:
        """Frames published between the previous frame this reader took and this one."""
    @property
    def demoted(self) -> bool:
        """An ``every_frame`` reader the producer dropped back to the newest frame."""
    @property
    def epoch(self) -> int:
        """The epoch of the region (+1 per producer restart or format change)."""
    @property
    def format(self) -> PixelFormat:
        """The pixel format."""
    @property
    def width(self) -> int:
        """Width in pixels."""
    @property
    def height(self) -> int:
        """Height in pixels."""
    @property
    def frame_format(self) -> str:
        """The full format, e.g. ``"640x480 bgra"`` (what :func:`verify` takes)."""
    def __enter__(self) -> Frame: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class Reader:
    """A seat on a stream: takes the newest complete frame, never a torn one.

    ``wait`` is how long to wait for a producer, at start and after it goes (a restarted
    producer is followed). Waits release the GIL in slices of at most 50 ms and check
    for signals between them, so Ctrl-C raises ``KeyboardInterrupt``.
    """

    def __init__(
        self,
        stream: str = "cam0",
        wait: float = 5.0,
        strategy: Strategy = "block",
        spin_budget: float = 5.0,
        every_frame: bool = False,
    ) -> None:
        """``every_frame=True``: every frame from the first one taken, the producer waiting
        for this reader up to its stall timeout (then ``Frame.demoted``). Raises
        :class:`Error` if the producer runs with ``--no-backpressure``."""
    def frame(self, timeout: float = 1.0) -> Frame:
        """The newest frame newer than the last one, waiting up to ``timeout`` seconds.

        Closes the frame returned before. Raises :class:`Timeout`, :class:`ProducerGone`,
        :class:`FrameInUse` (an array of the previous frame still lives) or
        :class:`Corrupt`.
        """
    def __iter__(self) -> Iterator[Frame]: ...
    def __next__(self) -> Frame:
        """The next frame; the loop ends when the producer stops."""
    def close(self) -> None:
        """Close the last frame and give the seat back (once no view lives)."""
    @property
    def frame_in_use(self) -> bool:
        """Whether an array of a frame of this reader is still alive."""
    @property
    def stream(self) -> str:
        """The stream's name."""
    @property
    def stream_format(self) -> str:
        """The current stream format, e.g. ``"640x480 bgra"``."""
    @property
    def seat(self) -> int:
        """The seat this reader sits in."""
    @property
    def stats(self) -> tuple[int, int, int]:
        """``(frames, skipped, reopens)`` since the reader opened."""
    def __enter__(self) -> Reader: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class WriteFrame:
    """One frame being written; ``with writer.frame() as buf`` gives ``buf``.

    ``buf`` is a writable numpy view of the free slot. When the block ends it becomes
    read-only for good and the frame is published (not if the block raised, or the
    stream is paused). If numpy views derived from ``buf`` still live then, the frame is
    not published and :class:`FrameInUse` is raised. A ``memoryview`` or a tensor made
    from ``buf`` inside the block is not detected: do not keep one.
    """

    def __enter__(self) -> npt.NDArray[np.uint8]: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    @property
    def seq(self) -> int | None:
        """The seq it was published with (``None`` before, or if it was not)."""

class Writer:
    """Makes this process the producer of a stream; frames go straight into the slots.

    A Rust service thread keeps the heartbeat, reclaims dead consumers' seats and serves
    the command queue, so a slow Python loop never looks dead. ``close()`` (or the end of
    ``with``, or garbage collection) ends the stream: consumers see it stop, its objects
    are unlinked, the name is released.
    """

    def __init__(
        self,
        stream: str,
        width: int,
        height: int,
        format: PixelFormat = "bgra",
        seats: int = 1,
        mode: int = 0o600,
    ) -> None: ...
    def frame(self, capture_ns: int | None = None) -> WriteFrame:
        """A context manager giving a writable view of the free slot, published at the end
        of the block (capture time ``capture_ns``, default: publish time)."""
    def publish(self, image: npt.NDArray[np.uint8], capture_ns: int | None = None) -> int | None:
        """Publish ``image`` (exactly :attr:`shape`, uint8) with one copy; returns its seq,
        or ``None`` while the stream is paused. ``ValueError`` names the expected shape."""
    def close(self) -> None:
        """End the stream."""
    @property
    def paused(self) -> bool:
        """Whether a consumer paused the stream (frames are dropped until resumed)."""
    @property
    def requested_fps(self) -> float | None:
        """The frame rate last asked for with SetFps (the writer does not pace itself)."""
    @property
    def published(self) -> int:
        """Frames published so far."""
    @property
    def dropped_paused(self) -> int:
        """Frames dropped while paused."""
    @property
    def refused_commands(self) -> int:
        """SetFormat/SetPattern commands received, which a Python writer does not do."""
    @property
    def consumers(self) -> list[tuple[int, int, bool]]:
        """The occupied seats as ``(seat, pid, live)``."""
    @property
    def stream(self) -> str:
        """The stream's name."""
    @property
    def format(self) -> PixelFormat:
        """The pixel format."""
    @property
    def width(self) -> int:
        """Width in pixels."""
    @property
    def height(self) -> int:
        """Height in pixels."""
    @property
    def seats(self) -> int:
        """Number of consumer seats."""
    @property
    def shape(self) -> list[int]:
        """The shape :meth:`publish` takes and :meth:`frame` gives."""
    def __enter__(self) -> Writer: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class Control:
    """Commands to a stream's producer (no seat needed), as ``consumer ctl`` sends them.

    Where the producer answers (the ``producer`` binary; ``answers`` is true), each method
    waits up to ``timeout`` seconds for the answer and raises :class:`Refused` with the
    producer's reason, or :class:`Timeout`. Where it cannot (a Python ``Writer``,
    GStreamer's framepipesink), the command is only queued and the method returns whether
    it was (``False``: the queue was full).
    """

    def __init__(self, stream: str = "cam0", timeout: float = 2.0) -> None: ...
    def pause(self) -> bool:
        """Stop publishing (the heartbeat goes on); answered once the producer has parked."""
    def resume(self) -> bool:
        """Publish again."""
    def fps(self, fps: float) -> bool:
        """Change the frame rate (0: as fast as the source gives frames)."""
    def pattern(self, pattern: Literal["moving", "bars"]) -> bool:
        """Switch the test pattern."""
    def format(
        self, width: int, height: int, pixel: PixelFormat | None = None
    ) -> tuple[int, str] | bool:
        """Change the stream's size (and pixel format; default: the stream's own):
        ``(epoch, "WxH pixfmt")`` of the new region; readers follow it."""
    def shutdown(self) -> bool:
        """Stop the producer cleanly."""
    def ping(self, nonce: int = 0) -> float | bool:
        """The round trip in seconds (or, where the producer does not answer, whether a
        Ping was queued)."""
    @property
    def answers(self) -> bool:
        """Whether the producer answers commands."""
    @property
    def timeout(self) -> float:
        """How long each answer is waited for, in seconds."""
    @property
    def stream(self) -> str:
        """The stream's name."""

def list() -> list[dict[str, object]]:  # noqa: A001
    """The streams of this user, as ``consumer list`` shows them (read-only, header only,
    no lock, no seat): ``name``, ``state`` (``live``, ``stalled``, ``stopping``,
    ``replaced``, ``leftover``, ``starting``, ``garbage``), ``live``, ``producer_pid``;
    for a readable region also ``width``, ``height``, ``format``, ``seats``,
    ``seats_used``, ``epoch``, ``heartbeat_age`` (s), ``published``, ``skipped``, ``fps``;
    else ``error``."""

def verify(data: npt.NDArray[np.uint8] | bytes | bytearray, format: FrameFormatLike, seq: int) -> None:
    """Check that ``data`` is the whole moving-pattern frame ``seq`` of ``format``
    (``"640x480 bgra"`` or ``(640, 480, "bgra")``); raises :class:`Corrupt` if not."""

def _after_fork_in_child() -> None: ...

"""framepipe: video frames between processes as numpy arrays, with no copy.

Read the newest frame of a stream::

    import framepipe
    with framepipe.Reader("cam0", wait=5.0) as r:
        with r.frame(timeout=1.0) as f:
            img = f.array          # read-only numpy view of the shared slot itself

Publish frames::

    with framepipe.Writer("cam1", width=1280, height=720, format="bgra") as w:
        with w.frame() as buf:     # writable view of the free slot
            buf[:] = img
        w.publish(img)             # or one copy from an existing array

See ``help(framepipe.Reader)``, ``help(framepipe.Writer)`` and ``framepipe.errors``.
"""

import os as _os

from framepipe._framepipe import (
    Control,
    Frame,
    Reader,
    WriteFrame,
    Writer,
    _after_fork_in_child,
    list,  # noqa: A004 - the package's own `list()`, as the CLI's `consumer list`
    verify,
)
from framepipe.errors import (
    Corrupt,
    Error,
    FrameInUse,
    NoProducer,
    PermissionDenied,
    ProducerGone,
    Refused,
    Timeout,
)

# A child forked without exec shares its parent's open file descriptions: the OFD locks
# that mark a seat or a producer alive, and the seat word and slot hold in shared memory.
# Releasing them in the child would release them for the parent (a producer could then
# overwrite a slot the parent still reads), so every Reader, Writer and frame made before
# the fork refuses to work in the child and leaks what it holds there instead of
# releasing it.
_os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "Reader",
    "Frame",
    "Writer",
    "WriteFrame",
    "Control",
    "list",
    "verify",
    "Error",
    "NoProducer",
    "ProducerGone",
    "Timeout",
    "PermissionDenied",
    "Corrupt",
    "FrameInUse",
    "Refused",
]

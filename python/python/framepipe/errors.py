"""The exceptions of framepipe, in one module.

Every one derives from :class:`Error` and carries the Rust error's message (with its
causes), so it reads like the CLI's error lines.
"""

from framepipe._framepipe import (
    Corrupt,
    Error,
    FrameInUse,
    NoProducer,
    PermissionDenied,
    ProducerGone,
    Refused,
    Timeout,
)

__all__ = [
    "Error",
    "NoProducer",
    "ProducerGone",
    "Timeout",
    "PermissionDenied",
    "Corrupt",
    "FrameInUse",
    "Refused",
]

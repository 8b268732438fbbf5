//! The consumer library's errors: what stopped a command before it finished its job.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use frame_vocab::{FrameFormat, StreamName};

/// Why a consumer command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No live producer appeared under the name within `--wait`.
    #[error(
        "no producer for stream {name} (waited {wait:?}; start one with `producer --stream {name}`)"
    )]
    NoProducer { name: StreamName, wait: Duration },
    /// The producer died (or hung) and none came back within `--wait`.
    #[error("the producer of stream {name} is gone and none came back within {wait:?}")]
    ProducerLost { name: StreamName, wait: Duration },
    /// The producer stopped before the command got the frame it needed.
    #[error("the producer of stream {name} stopped before sending a frame")]
    ProducerStopped { name: StreamName },
    /// The stream exists but cannot be attached to (permissions, seats, a corrupt layout).
    #[error("cannot attach to stream {name}")]
    Attach {
        name: StreamName,
        #[source]
        source: shm_frames::OpenError,
    },
    /// The producer is alive but sent no frame in time.
    #[error("no frame from stream {name} within {wait:?} (is the producer paused?)")]
    Timeout { name: StreamName, wait: Duration },
    /// The region keeps yielding values no honest producer writes.
    #[error("stream {name} keeps returning corrupt values")]
    Corrupt {
        name: StreamName,
        #[source]
        source: shm_frames::Corrupt,
    },
    /// There is no X display to open a window on.
    #[error(
        "no display ({reason}): use `consumer stats` to measure headless, or run the viewer \
         under `xvfb-run consumer view`"
    )]
    NoDisplay { reason: String },
    /// The window system failed after the window opened.
    #[error("the window failed")]
    Window(#[source] minifb::Error),
    /// An output file could not be created, written or finished.
    #[error("cannot write {}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A frame could not be converted for output.
    #[error("cannot convert the frame")]
    Convert(#[from] frame_vocab::ConvertError),
    /// A PNG could not be encoded.
    #[error("cannot encode {} as PNG", path.display())]
    Png {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// The stream's format cannot be written in the requested container.
    #[error("cannot record a {format} stream as Y4M: {reason}")]
    Unrecordable {
        format: FrameFormat,
        reason: &'static str,
    },
    /// The demo's producer process could not be started.
    #[error("cannot start the demo producer ({program})")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// SIGINT or SIGTERM arrived while waiting.
    #[error("interrupted")]
    Interrupted,
    /// The demo's producer process exited on its own.
    #[error("the demo producer exited ({status})")]
    ProducerExited { status: ExitStatus },
}

impl Error {
    /// Whether the error means "there is no producer" (exit code 3).
    pub fn is_no_producer(&self) -> bool {
        matches!(
            self,
            Error::NoProducer { .. } | Error::ProducerLost { .. } | Error::ProducerStopped { .. }
        )
    }

    /// Whether the error is a timeout waiting for a frame (exit code 4).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

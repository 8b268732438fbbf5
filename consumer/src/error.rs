//! The consumer library's errors: what stopped a command before it finished its job.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use frame_vocab::{FrameFormat, StreamName};
use shm_frames::OpenError;

/// Why a consumer command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No region of the stream could be attached within `--wait`.
    #[error(transparent)]
    Unattached(#[from] Unattached),
    /// The producer stopped before the command got the frame it needed.
    #[error("the producer of stream {name} stopped before sending a frame")]
    ProducerStopped { name: StreamName },
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
        match self {
            Error::Unattached(unattached) => unattached.is_no_producer(),
            Error::ProducerStopped { .. } => true,
            _ => false,
        }
    }

    /// Whether the error is a timeout waiting for a frame (exit code 4).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// No region of a stream could be attached within `--wait`, at start or after its producer
/// went: the one error a wait ends with, naming the last attempt's reason.
#[derive(Debug)]
pub struct Unattached {
    /// The stream.
    pub name: StreamName,
    /// How long the wait was.
    pub wait: Duration,
    /// Whether a producer had been attached before (it went and none came back).
    pub after_loss: bool,
    /// Why the last attempt failed (boxed: it is large, and errors travel by value).
    pub last: Box<OpenError>,
}

impl Unattached {
    /// Whether the last reason means "no live producer" (exit code 3): nothing under the
    /// name, a dead or unready producer, or an object that is not a valid region. Permission
    /// denied, all seats taken and failing system calls are other errors (exit code 1).
    pub fn is_no_producer(&self) -> bool {
        !matches!(
            *self.last,
            OpenError::PermissionDenied { .. }
                | OpenError::Refused(_)
                | OpenError::AllSeatsTaken { .. }
                | OpenError::NoBackpressure { .. }
                | OpenError::Sys { .. }
        )
    }
}

impl std::fmt::Display for Unattached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, wait) = (&self.name, humantime::format_duration(self.wait));
        if let OpenError::NoBackpressure { .. } = &*self.last {
            // Refused at once, not after a wait.
            return write!(f, "{}", self.last);
        }
        if self.after_loss {
            write!(
                f,
                "the producer of stream {name} is gone and none came back within {wait}"
            )?;
        } else if self.is_no_producer() {
            write!(f, "no producer for stream {name} within {wait}")?;
        } else {
            write!(f, "cannot attach to stream {name} within {wait}")?;
        }
        match &*self.last {
            OpenError::NoProducer { .. } => write!(
                f,
                " (nothing is published under that name; start one with `producer --stream {name}`)"
            ),
            last => write!(f, "; last reason: {last}"),
        }
    }
}

impl std::error::Error for Unattached {
    // The last reason is part of the message; its own cause (an errno) comes next.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unattached(after_loss: bool, last: OpenError) -> Unattached {
        Unattached {
            name: StreamName::new("cam0").unwrap(),
            wait: Duration::from_millis(1500),
            after_loss,
            last: Box::new(last),
        }
    }

    #[test]
    fn the_one_error_names_the_last_reason_and_the_exit_code_follows_it() {
        let none = unattached(
            false,
            OpenError::NoProducer {
                name: "cam0".into(),
            },
        );
        assert!(none.is_no_producer());
        let text = none.to_string();
        assert!(
            text.starts_with("no producer for stream cam0 within 1s 500ms"),
            "{text}"
        );
        assert!(
            text.contains("start one with `producer --stream cam0`"),
            "{text}"
        );

        let garbage = unattached(false, OpenError::BadMagic { found: 0x5a5a });
        assert!(garbage.is_no_producer(), "garbage is not a producer");
        assert!(
            garbage
                .to_string()
                .ends_with("; last reason: not a framepipe region (magic 0x0000000000005a5a)"),
            "{garbage}"
        );

        let lost = unattached(
            true,
            OpenError::VersionMismatch {
                found: 9,
                expected: 1,
            },
        );
        assert!(lost.is_no_producer());
        assert!(
            lost.to_string()
                .starts_with("the producer of stream cam0 is gone and none came back within"),
            "{lost}"
        );

        let seats = unattached(
            false,
            OpenError::AllSeatsTaken {
                name: "cam0".into(),
                seats: 1,
            },
        );
        assert!(
            !seats.is_no_producer(),
            "a producer is there: exit 1, not 3"
        );
        assert!(
            seats
                .to_string()
                .starts_with("cannot attach to stream cam0"),
            "{seats}"
        );
        assert!(!Error::from(seats).is_no_producer());

        let denied = unattached(
            false,
            OpenError::PermissionDenied {
                object: "/framepipe.cam0".into(),
                source: nix::errno::Errno::EACCES,
            },
        );
        // The errno comes next in the chain, not twice in the message.
        let source = std::error::Error::source(&denied).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("EACCES: Permission denied"));
    }
}

//! The follower's retry policy, in one place: which failures to attach are worth another
//! attempt within `--wait`, how attempts are paced, and how they are logged.

use std::time::{Duration, Instant};

use frame_vocab::StreamName;
use shm_frames::OpenError;

/// Shortest time between two attempts to attach (nothing signals a name's creation, so it
/// is polled; this is not on any frame's path).
const POLL: Duration = Duration::from_millis(10);

/// The retry policy, in one place: whether another attempt to attach is worth making
/// after `error`, given the `--wait` deadline.
///
/// Within `--wait` every failure to attach is: no object under the name yet; one still
/// being made (no magic yet) or being replaced (Stopping, Replaced); a producer that is
/// gone; an object that is not, or no longer, a valid region (garbage where the
/// magic should be, another layout version or architecture, a truncated object, sizes that
/// disagree, a corrupt layout field), which its next producer retires; all seats taken (a
/// consumer may leave, a dead one's seat is reclaimed); permission denied (another user's
/// object, which may go); a failing system call. Only the deadline ends the wait, and then
/// the last failure is the reason the command reports. The match names every kind so that
/// a new one is decided here, not by accident.
pub(super) fn worth_retry(error: &OpenError, deadline: Instant) -> bool {
    let retry = match error {
        OpenError::NoProducer { .. }
        | OpenError::NotReady { .. }
        | OpenError::ProducerGone { .. }
        | OpenError::BadMagic { .. }
        | OpenError::VersionMismatch { .. }
        | OpenError::ForeignLayout { .. }
        | OpenError::HeaderSize { .. }
        | OpenError::Truncated { .. }
        | OpenError::SizeMismatch { .. }
        | OpenError::BadLayout { .. }
        | OpenError::Format(_)
        | OpenError::AllSeatsTaken { .. }
        | OpenError::PermissionDenied { .. }
        // Another user's object under our name: its owner may yet remove it.
        | OpenError::Refused(_)
        | OpenError::Sys { .. } => true,
        // The producer is there and said it never waits: asking again changes nothing.
        OpenError::NoBackpressure { .. } => false,
    };
    retry && Instant::now() < deadline
}

/// After a failed attempt that began at `started`: waits out the rest of [`POLL`] (not past
/// `until`), so an attempt that fails at once is not repeated in a busy loop.
pub(super) fn pause_after_attempt(started: Instant, until: Instant) {
    let next = (started + POLL).min(until);
    std::thread::sleep(next.saturating_duration_since(Instant::now()));
}

/// Logs a failed attempt: at info when its reason differs from the previous attempt's
/// (so a log shows each reason once), else at debug.
pub(super) fn log_failed_attempt(
    stream: &StreamName,
    error: &OpenError,
    previous: Option<&OpenError>,
) {
    let reason = error.to_string();
    if previous.is_some_and(|previous| previous.to_string() == reason) {
        tracing::debug!(%stream, %reason, "cannot attach yet; trying again");
    } else {
        tracing::info!(%stream, %reason, "cannot attach yet; trying again within --wait");
    }
}

//! The mapped shm object (placeholder until the region lands).

use crate::name::StreamName;

/// The pid a live producer of `name` states in its header, if it can be read.
pub(crate) fn producer_pid_hint(_name: &StreamName) -> Option<u32> {
    None
}

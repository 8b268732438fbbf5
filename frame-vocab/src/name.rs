//! Stream names and the names of the kernel objects that belong to a stream.

use std::fmt;
use std::str::FromStr;

/// The stream name used when none is given.
pub const DEFAULT_STREAM: &str = "cam0";

/// The environment variable that names the stream when `--stream` is absent.
pub const STREAM_ENV: &str = "FRAMEPIPE_STREAM";

/// A validated stream name: `[A-Za-z0-9_-]{1,32}`.
///
/// A stream `NAME` owns the shm object `/framepipe.NAME`, the command queue
/// `/framepipe.NAME.ctl`, per-seat event queues `/framepipe.NAME.s<seat>` and the abstract
/// Unix socket `\0framepipe.NAME` that marks its producer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamName(String);

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream name {0:?}: use 1 to 32 of A-Z a-z 0-9 _ -")]
pub struct InvalidStreamName(pub String);

impl StreamName {
    /// Validates a stream name.
    pub fn new(name: &str) -> Result<StreamName, InvalidStreamName> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(StreamName(name.to_owned()))
        } else {
            Err(InvalidStreamName(name.to_owned()))
        }
    }

    /// The bare name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shm object's name: `/framepipe.NAME`.
    pub fn shm_name(&self) -> String {
        format!("/framepipe.{}", self.0)
    }

    /// The command queue's name: `/framepipe.NAME.ctl`.
    pub fn command_queue_name(&self) -> String {
        format!("/framepipe.{}.ctl", self.0)
    }

    /// Seat `seat`'s event queue name: `/framepipe.NAME.s<seat>`.
    pub fn event_queue_name(&self, seat: u32) -> String {
        format!("/framepipe.{}.s{}", self.0, seat)
    }

    /// The abstract socket name (without the leading NUL) that marks the producer.
    pub fn socket_name(&self) -> String {
        format!("framepipe.{}", self.0)
    }
}

impl Default for StreamName {
    fn default() -> Self {
        StreamName(DEFAULT_STREAM.to_owned())
    }
}

impl FromStr for StreamName {
    type Err = InvalidStreamName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamName::new(s)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(StreamName::new("cam0").is_ok());
        assert!(StreamName::new("A_b-9").is_ok());
        assert!(StreamName::new(&"x".repeat(32)).is_ok());
        for bad in ["", "a/b", "a.b", "a b", "é", &"x".repeat(33)] {
            assert!(StreamName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names() {
        let n = StreamName::new("cam0").unwrap();
        assert_eq!(n.shm_name(), "/framepipe.cam0");
        assert_eq!(n.command_queue_name(), "/framepipe.cam0.ctl");
        assert_eq!(n.event_queue_name(3), "/framepipe.cam0.s3");
        assert_eq!(n.socket_name(), "framepipe.cam0");
    }
}

//! Counters a queue handle keeps: what it sent, dropped, received and rejected.

use crate::wire::DecodeError;

/// What happened to one `send`: a full queue drops the message instead of blocking.
#[must_use = "a dropped message is worth noticing"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The message is in the queue.
    Queued,
    /// The queue was full; the message was dropped and counted.
    DroppedFull,
}

/// A sender's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Messages queued.
    pub sent: u64,
    /// Messages dropped because the queue was full.
    pub dropped_full: u64,
}

/// A receiver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// Valid messages returned.
    pub received: u64,
    /// Messages that failed to decode, skipped.
    pub rejected: Rejected,
}

/// Received messages that failed to decode, one count per [`DecodeError`] variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// [`DecodeError::Empty`].
    pub empty: u64,
    /// [`DecodeError::Truncated`].
    pub truncated: u64,
    /// [`DecodeError::TooLong`].
    pub too_long: u64,
    /// [`DecodeError::TrailingBytes`].
    pub trailing_bytes: u64,
    /// [`DecodeError::BadMagic`].
    pub bad_magic: u64,
    /// [`DecodeError::UnsupportedVersion`].
    pub unsupported_version: u64,
    /// [`DecodeError::BadChecksum`].
    pub bad_checksum: u64,
    /// [`DecodeError::UnknownKind`].
    pub unknown_kind: u64,
    /// [`DecodeError::BodyLength`].
    pub body_length: u64,
    /// [`DecodeError::Format`].
    pub format: u64,
    /// [`DecodeError::UnknownPixelFormat`].
    pub unknown_pixel_format: u64,
    /// [`DecodeError::UnknownPattern`].
    pub unknown_pattern: u64,
    /// [`DecodeError::Fps`].
    pub fps: u64,
    /// [`DecodeError::BadField`].
    pub bad_field: u64,
}

impl Rejected {
    /// Counts one rejection.
    pub fn record(&mut self, error: &DecodeError) {
        let count = match error {
            DecodeError::Empty => &mut self.empty,
            DecodeError::Truncated { .. } => &mut self.truncated,
            DecodeError::TooLong { .. } => &mut self.too_long,
            DecodeError::TrailingBytes { .. } => &mut self.trailing_bytes,
            DecodeError::BadMagic { .. } => &mut self.bad_magic,
            DecodeError::UnsupportedVersion { .. } => &mut self.unsupported_version,
            DecodeError::BadChecksum { .. } => &mut self.bad_checksum,
            DecodeError::UnknownKind { .. } => &mut self.unknown_kind,
            DecodeError::BodyLength { .. } => &mut self.body_length,
            DecodeError::Format(_) => &mut self.format,
            DecodeError::UnknownPixelFormat { .. } => &mut self.unknown_pixel_format,
            DecodeError::UnknownPattern { .. } => &mut self.unknown_pattern,
            DecodeError::Fps { .. } => &mut self.fps,
            DecodeError::BadField { .. } => &mut self.bad_field,
        };
        *count += 1;
    }

    /// All rejections.
    pub fn total(&self) -> u64 {
        let Rejected {
            empty,
            truncated,
            too_long,
            trailing_bytes,
            bad_magic,
            unsupported_version,
            bad_checksum,
            unknown_kind,
            body_length,
            format,
            unknown_pixel_format,
            unknown_pattern,
            fps,
            bad_field,
        } = *self;
        empty
            + truncated
            + too_long
            + trailing_bytes
            + bad_magic
            + unsupported_version
            + bad_checksum
            + unknown_kind
            + body_length
            + format
            + unknown_pixel_format
            + unknown_pattern
            + fps
            + bad_field
    }
}

#[cfg(test)]
mod tests {
    use frame_vocab::FormatError;

    use super::*;

    #[test]
    fn each_error_has_its_own_count() {
        let errors = [
            DecodeError::Empty,
            DecodeError::Truncated { len: 1, needed: 12 },
            DecodeError::TooLong { len: 300 },
            DecodeError::TrailingBytes {
                len: 13,
                expected: 12,
            },
            DecodeError::BadMagic { found: 0 },
            DecodeError::UnsupportedVersion { found: 2 },
            DecodeError::BadChecksum {
                stated: 0,
                computed: 1,
            },
            DecodeError::UnknownKind { kind: 0x7f },
            DecodeError::BodyLength {
                kind: 1,
                expected: 8,
                found: 0,
            },
            DecodeError::Format(FormatError::Zero {
                width: 0,
                height: 0,
            }),
            DecodeError::UnknownPixelFormat { code: 0 },
            DecodeError::UnknownPattern { code: 0 },
            DecodeError::Fps { fps: f64::NAN },
            DecodeError::BadField {
                kind: 0x84,
                field: "outcome",
            },
        ];
        let mut rejected = Rejected::default();
        for (i, error) in errors.iter().enumerate() {
            let before = rejected;
            rejected.record(error);
            assert_eq!(rejected.total(), i as u64 + 1);
            assert_ne!(rejected, before, "{error:?} was not counted");
        }
        // Every field was bumped exactly once: 14 variants, 14 distinct counters.
        let Rejected {
            empty,
            truncated,
            too_long,
            trailing_bytes,
            bad_magic,
            unsupported_version,
            bad_checksum,
            unknown_kind,
            body_length,
            format,
            unknown_pixel_format,
            unknown_pattern,
            fps,
            bad_field,
        } = rejected;
        let all = [
            empty,
            truncated,
            too_long,
            trailing_bytes,
            bad_magic,
            unsupported_version,
            bad_checksum,
            unknown_kind,
            body_length,
            format,
            unknown_pixel_format,
            unknown_pattern,
            fps,
            bad_field,
        ];
        assert_eq!(all, [1; 14]);
    }
}

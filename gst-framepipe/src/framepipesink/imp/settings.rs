//! `framepipesink`'s properties: their settings, defaults and documentation.

use gst::glib;
use gst::prelude::*;
use shm_frames::MAX_SEATS;

pub(super) const DEFAULT_STREAM: &str = frame_vocab::DEFAULT_STREAM;
pub(super) const DEFAULT_SEATS: u32 = 1;
pub(super) const DEFAULT_MODE: &str = "0600";
pub(super) const DEFAULT_WAIT_FOR_CONSUMERS: u32 = 0;
pub(super) const DEFAULT_STALL_TIMEOUT_MS: u32 =
    shm_frames::DEFAULT_STALL_TIMEOUT.as_millis() as u32;

#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) stream: String,
    pub(super) seats: u32,
    pub(super) mode: String,
    pub(super) wait_for_consumers: u32,
    pub(super) no_backpressure: bool,
    /// Milliseconds; 0 waits for an every-frame consumer as long as it lives.
    pub(super) stall_timeout_ms: u32,
    /// Offer upstream the pool whose buffers are slots (zero-copy).
    pub(super) slot_pool: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stream: DEFAULT_STREAM.to_owned(),
            seats: DEFAULT_SEATS,
            mode: DEFAULT_MODE.to_owned(),
            wait_for_consumers: DEFAULT_WAIT_FOR_CONSUMERS,
            no_backpressure: false,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
            slot_pool: true,
        }
    }
}

/// Parses the `mode` property: DESIGN.md accepts 0600 and 0660, nothing else.
pub(super) fn parse_mode(mode: &str) -> Option<u32> {
    let digits = mode.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode @ (0o600 | 0o660)) => Some(mode),
        _ => None,
    }
}

/// The element's properties, as `gst-inspect-1.0 framepipesink` shows them.
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("stream")
            .nick("Stream")
            .blurb(
                "Name of the framepipe stream to produce ([A-Za-z0-9_-]{1,32}; \
                 per user, like `producer --stream`)",
            )
            .default_value(Some(DEFAULT_STREAM))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("seats")
            .nick("Seats")
            .blurb(
                "Number of consumers that may read at once (the region has \
                 seats + 2 frame slots)",
            )
            .minimum(1)
            .maximum(MAX_SEATS as u32)
            .default_value(DEFAULT_SEATS)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("mode")
            .nick("Mode")
            .blurb(
                "Permissions of the region and queues: 0600 (this user only) or \
                 0660 (share with the group)",
            )
            .default_value(Some(DEFAULT_MODE))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("wait-for-consumers")
            .nick("Wait for consumers")
            .blurb(
                "Block rendering while fewer than this many consumers sit on the \
                 stream (0: never wait), like shmsink's wait-for-connection",
            )
            .maximum(MAX_SEATS as u32)
            .default_value(DEFAULT_WAIT_FOR_CONSUMERS)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("no-backpressure")
            .nick("No backpressure")
            .blurb(
                "Never wait for any consumer: every-frame consumers are refused \
                 (like `producer --no-backpressure`); otherwise render waits for \
                 them, up to stall-timeout",
            )
            .default_value(false)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("stall-timeout")
            .nick("Stall timeout")
            .blurb(
                "Milliseconds an every-frame consumer may take nothing before it is \
                 dropped back to newest-frame delivery; 0 waits for it as long as \
                 it lives (like `producer --stall-timeout none`)",
            )
            .default_value(DEFAULT_STALL_TIMEOUT_MS)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("slot-pool")
            .nick("Slot pool")
            .blurb(
                "Offer upstream a buffer pool whose buffers are the stream's slots, so \
                 frames are rendered into shared memory and published without a copy; \
                 where no slot is to spare, or the caps' rows are not packed as \
                 framepipe's, buffers are ordinary memory and copied once",
            )
            .default_value(true)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(
                "Buffers published in place (rendered into a lent slot), published \
                 after a copy, and dropped for want of a free slot",
            )
            .read_only()
            .build(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_accepts_only_0600_and_0660() {
        assert_eq!(parse_mode("0600"), Some(0o600));
        assert_eq!(parse_mode("660"), Some(0o660));
        assert_eq!(parse_mode("0o660"), Some(0o660));
        assert_eq!(parse_mode("0644"), None);
        assert_eq!(parse_mode("0666"), None);
        assert_eq!(parse_mode("rw"), None);
    }
}

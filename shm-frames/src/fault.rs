//! Fault injection for the reliability tests (feature `fault-injection`, which only test
//! builds enable): `FRAMEPIPE_FAULT` names one point at which a producer aborts, as a crash
//! there would leave things.
//!
//! - `abort-mid-slot:SEQ`: frame SEQ is half written (its second half overwritten with
//!   0xA5, as a write cut short leaves stale or foreign bytes), then the process aborts
//!   before publishing it.
//! - `abort-before-magic`: the region is made and its header written, then the process
//!   aborts before storing the magic.

use std::sync::OnceLock;

/// The environment variable that arms a fault.
pub const VAR: &str = "FRAMEPIPE_FAULT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    MidSlot(u64),
    BeforeMagic,
}

/// The fault `FRAMEPIPE_FAULT` arms, read once; an unknown value arms nothing.
fn armed() -> Option<Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    *FAULT.get_or_init(|| {
        let value = std::env::var(VAR).ok()?;
        let fault = match value.split_once(':') {
            Some(("abort-mid-slot", seq)) => seq.parse().ok().map(Fault::MidSlot),
            None if value == "abort-before-magic" => Some(Fault::BeforeMagic),
            _ => None,
        };
        if fault.is_none() {
            tracing::warn!(%value, "unknown {VAR}; no fault armed");
        }
        fault
    })
}

/// Before frame `seq` is published into `slot`: if armed for it, half-writes and aborts.
pub(crate) fn mid_slot(seq: u64, slot: &mut [u8]) {
    if armed() == Some(Fault::MidSlot(seq)) {
        let half = slot.len() / 2;
        slot[half..].fill(0xA5);
        tracing::error!(seq, "fault injection: aborting half-way through a slot");
        std::process::abort();
    }
}

/// Before the magic is stored: if armed, aborts.
pub(crate) fn before_magic() {
    if armed() == Some(Fault::BeforeMagic) {
        tracing::error!("fault injection: aborting before the magic is written");
        std::process::abort();
    }
}

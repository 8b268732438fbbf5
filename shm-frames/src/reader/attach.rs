//! Attaching: the live region of a name, checked from its header alone, and a seat claimed
//! in it; and the header checks a waiting reader repeats (state, liveness).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Delivery, HEARTBEAT_TIMEOUT};
use crate::error::{Corrupt, OpenError, WaitError};
use crate::layout::{
    Describe, FLAG_NO_BACKPRESSURE, Header, STATE_LIVE, STATE_REPLACED, STATE_STOPPING,
};
use crate::liveness;
use crate::protocol::{self, SeatState, SeatWord, SlotTable};
use crate::region::Region;
use crate::slot::Seat;
use frame_vocab::name::StreamName;
use frame_vocab::{Deadline, monotonic_ns};

/// The error for a region state other than Live.
pub(super) fn state_error(state: u32) -> Result<(), WaitError> {
    match state {
        STATE_LIVE => Ok(()),
        STATE_STOPPING => Err(WaitError::Stopped),
        STATE_REPLACED => Err(WaitError::Replaced),
        other => Err(Corrupt::State(other).into()),
    }
}

/// Why a producer does not look alive.
pub(super) enum NotAlive {
    /// Its lock is free.
    Dead,
    /// Its lock is held, but its heartbeat is this old.
    Hung(Duration),
}

pub(super) fn producer_alive(header: &Header, fd: BorrowedFd<'_>) -> Result<(), NotAlive> {
    // An error of the probe itself (never expected) counts as alive: such a producer, dead
    // or not, is reported stalled once its heartbeat is old, and a restart replaces it.
    if !liveness::is_held(fd, liveness::PRODUCER_BYTE).unwrap_or(true) {
        return Err(NotAlive::Dead);
    }
    let beat = header.heartbeat_ns.load(Ordering::Relaxed);
    let age = monotonic_ns().abs_diff(beat);
    if age > HEARTBEAT_TIMEOUT.as_nanos() as u64 {
        return Err(NotAlive::Hung(Duration::from_nanos(age)));
    }
    Ok(())
}

/// Opens the live region of `name` and claims a seat, retrying what may pass (no producer
/// yet, one starting, one replacing its region, a dead consumer's seat awaiting reclaim)
/// until `deadline`.
pub(super) fn attach(
    name: &StreamName,
    deadline: Deadline,
    delivery: Delivery,
) -> Result<Seat, OpenError> {
    loop {
        let (error, transient) = match attach_once(name, delivery) {
            Ok(attached) => return Ok(attached),
            Err((error, transient)) => (error, transient),
        };
        if !transient || deadline.expired() {
            return Err(error);
        }
        // Nothing signals a name's creation; poll it (10 ms is short beside a producer's
        // start-up, and this is not on any frame's path).
        std::thread::sleep(deadline.remaining().min(Duration::from_millis(10)));
    }
}

fn attach_once(name: &StreamName, delivery: Delivery) -> Result<Seat, (OpenError, bool)> {
    let region = Region::open(name, |header, fd| usable(name, header, fd)).map_err(|e| {
        let transient = e.is_transient();
        (e, transient)
    })?;
    let mode = match delivery {
        Delivery::Newest => protocol::Mode::Newest,
        // Refused before a seat is claimed, so the refusal disturbs nobody.
        Delivery::EveryFrame
            if Describe::read(region.header()).flags & FLAG_NO_BACKPRESSURE != 0 =>
        {
            return Err((
                OpenError::NoBackpressure {
                    name: name.to_string(),
                },
                false,
            ));
        }
        Delivery::EveryFrame => protocol::Mode::EveryFrame,
    };
    let (index, word) = claim_seat(&region, name, mode)?;
    Ok(Seat {
        region,
        index,
        word,
        left: AtomicBool::new(false),
    })
}

/// Whether a region whose layout is valid can take a new seat now, judged from its header
/// alone: Live, and a producer that lives (holds its lock). A stalled one (lock held,
/// heartbeat old) does: a consumer attaches and waits, as the ones already seated do.
fn usable(name: &StreamName, header: &Header, fd: BorrowedFd<'_>) -> Result<(), OpenError> {
    match header.state.load(Ordering::Acquire) {
        STATE_LIVE => {}
        STATE_STOPPING | STATE_REPLACED => {
            return Err(OpenError::NotReady {
                name: name.to_string(),
            });
        }
        other => {
            return Err(OpenError::BadLayout {
                field: "state",
                value: other.into(),
            });
        }
    }
    if let Err(NotAlive::Dead) = producer_alive(header, fd) {
        return Err(OpenError::ProducerGone {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Claims the first free seat: take its lock first (so no reclaimer acts on it), then
/// compare-and-swap its exact word, drain its semaphore, go Live.
fn claim_seat(
    region: &Region,
    name: &StreamName,
    mode: protocol::Mode,
) -> Result<(u32, SeatWord), (OpenError, bool)> {
    let table = region.table();
    let sys = |op, source| {
        (
            OpenError::Sys {
                op,
                object: region.object().to_owned(),
                source,
            },
            false,
        )
    };
    let mut awaiting_reclaim = false;
    for seat in 0..region.layout().seats {
        let byte = liveness::seat_byte(seat);
        if !liveness::try_lock(region.fd(), byte).map_err(|e| sys("lock", e))? {
            continue; // A live consumer sits here.
        }
        let observed = SeatWord(table.seat_word(seat as usize).load(Ordering::Relaxed));
        let claimed = protocol::claim(&table, seat as usize, observed, std::process::id());
        if let Some(claimed) = claimed {
            protocol::set_delivery(&table, seat as usize, claimed, mode);
            region.sem(seat).drain();
            if let Some(live) = protocol::go_live(&table, seat as usize, claimed) {
                return Ok((seat, live));
            }
        } else if observed.state() != SeatState::Free {
            // Its lock is free but its word is not: a dead consumer's seat, which the
            // producer reclaims on its next heartbeat.
            awaiting_reclaim = true;
        }
        liveness::unlock(region.fd(), byte).map_err(|e| sys("unlock", e))?;
    }
    Err((
        OpenError::AllSeatsTaken {
            name: name.to_string(),
            seats: region.layout().seats,
        },
        awaiting_reclaim,
    ))
}

//! Wake-up primitives alone, each posted by a child every [`PERIOD`] and waited for here:
//! ns from the poster's stamp (taken just before it posts) to this process running again.
#![forbid(unsafe_code)]

use std::time::Duration;

use frame_vocab::{Deadline, monotonic_ns};
use shm_frames::WaitStrategy;

use crate::child::{Args, Child};
use crate::copy::{CopyReceiver, Pace};
use crate::error::{MeasureError, Result};
use crate::futex::SharedPage;
use crate::measure::{PERIOD, Pacer};
use crate::shm::{ShmMode, ShmReceiver};
use crate::size::SIZES;

/// How long one wait may take before the case fails.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A wake-up primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    /// A process-shared POSIX semaphore (a seat's, in a shm-frames region).
    Semaphore,
    /// A futex on a word of a shared page.
    Futex,
    /// raw_sync's Event (a process-shared pthread mutex + condition variable).
    RawSyncEvent,
    /// A 64-byte message on a POSIX queue of 64-byte messages.
    Mq64,
    /// A spinning atomic load (the region's probe word).
    SpinningAtomic,
}

/// Every primitive, in report order.
pub const PRIMITIVES: [Primitive; 5] = [
    Primitive::Semaphore,
    Primitive::Futex,
    Primitive::RawSyncEvent,
    Primitive::Mq64,
    Primitive::SpinningAtomic,
];

impl Primitive {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Primitive::Semaphore => "process-shared POSIX semaphore",
            Primitive::Futex => "futex",
            Primitive::RawSyncEvent => "raw_sync Event",
            Primitive::Mq64 => "64-byte mq message",
            Primitive::SpinningAtomic => "spinning atomic",
        }
    }
}

/// One primitive set up with its poster child; [`WakeCase::sample`] gives one wake-up.
#[derive(Debug)]
pub enum WakeCase {
    /// Semaphore or spinning atomic, through the region's probe.
    Shm(ShmReceiver, bool),
    /// The futex page (the child posts).
    Futex(SharedPage, Child, u32),
    /// The Event's page (the child posts).
    Event(SharedPage, Child),
    /// 64-byte messages.
    Mq(CopyReceiver),
}

impl WakeCase {
    /// Sets up `primitive`, its poster on `cpu`.
    pub fn start(primitive: Primitive, cpu: usize) -> Result<WakeCase> {
        Ok(match primitive {
            Primitive::Semaphore | Primitive::SpinningAtomic => {
                let shm = ShmReceiver::start(SIZES[0], ShmMode::Probe, WaitStrategy::Block, cpu)?;
                WakeCase::Shm(shm, primitive == Primitive::SpinningAtomic)
            }
            Primitive::Futex => {
                let page = SharedPage::create()?;
                let seen = page.current();
                let child = Child::spawn("futex-poster", &[("page", page.name().to_owned())], cpu)?;
                WakeCase::Futex(page, child, seen)
            }
            Primitive::RawSyncEvent => {
                let page = SharedPage::create()?;
                // Initialise before the child attaches; the Event lives in the page.
                drop(page.create_event()?);
                let child = Child::spawn("event-poster", &[("page", page.name().to_owned())], cpu)?;
                WakeCase::Event(page, child)
            }
            Primitive::Mq64 => WakeCase::Mq(CopyReceiver::start_mq(64, 64, Pace::Period, cpu)?),
        })
    }

    /// One wake-up, ns.
    pub fn sample(&mut self) -> Result<u64> {
        let deadline = Deadline::after(WAIT_TIMEOUT);
        match self {
            WakeCase::Shm(shm, false) => shm.semaphore_wake(),
            WakeCase::Shm(shm, true) => shm.spin_wake(),
            WakeCase::Futex(page, _, seen) => {
                let stamp = page
                    .wait_change(*seen, deadline)
                    .ok_or_else(|| MeasureError::Timeout("a futex wake".into()))?;
                let now = monotonic_ns();
                *seen = page.current();
                Ok(now.saturating_sub(stamp))
            }
            WakeCase::Event(page, _) => {
                let event = page.open_event()?;
                let stamp = event
                    .wait(deadline)
                    .ok_or_else(|| MeasureError::Timeout("a raw_sync Event".into()))?;
                Ok(monotonic_ns().saturating_sub(stamp))
            }
            WakeCase::Mq(mq) => mq.sample(),
        }
    }
}

/// The child: bumps the futex word and wakes, every [`PERIOD`].
pub fn futex_role(args: &Args) -> Result<()> {
    let page = SharedPage::open(args.get("page")?)?;
    crate::child::say("READY")?;
    let mut pacer = Pacer::new(PERIOD);
    loop {
        pacer.wait();
        page.post()?;
    }
}

/// The child: signals the raw_sync Event, every [`PERIOD`].
pub fn event_role(args: &Args) -> Result<()> {
    let page = SharedPage::open(args.get("page")?)?;
    let event = page.open_event()?;
    crate::child::say("READY")?;
    let mut pacer = Pacer::new(PERIOD);
    loop {
        pacer.wait();
        event.post()?;
    }
}

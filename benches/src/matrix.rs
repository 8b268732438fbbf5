//! The whole matrix: which cases, how long each runs (quick or full), the child roles, and
//! the results the report is built from.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use shm_frames::WaitStrategy;

use crate::child::{RoleFn, cpus, pin};
use crate::copy::{CopyKind, CopyReceiver, Pace};
use crate::error::Result;
use crate::fanout::{self, CONSUMERS, Fanout};
use crate::measure::{Budget, Latency, Rate, collect, private_write, rate_for};
use crate::roundtrip::{self, ROUND_TRIPS, RoundTrip, RoundTripCase};
use crate::shm::{self, ShmMode, ShmReceiver};
use crate::size::{SIZES, Size};
use crate::wake::{self, PRIMITIVES, Primitive, WakeCase};
use crate::{copy, mq};

/// Every child role of the matrix, for [`crate::child::run_if_child`].
pub const ROLES: &[(&str, RoleFn)] = &[
    ("copy-writer", copy::writer_role),
    ("shm-writer", shm::writer_role),
    ("futex-poster", wake::futex_role),
    ("event-poster", wake::event_role),
    ("rt-typed", roundtrip::typed_role),
    ("rt-mq", roundtrip::mq_role),
    ("rt-shm", roundtrip::shm_role),
    ("fanout-producer", fanout::producer_role),
    ("fanout-consumer", fanout::consumer_role),
];

/// A handoff mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// shm-frames, Block strategy (the seat's semaphore).
    ShmBlock,
    /// shm-frames, Spin strategy (polling `latest`).
    ShmSpin,
    /// A POSIX message queue, chunked at its message size.
    Mq,
    /// A Unix stream socket.
    UnixSocket,
    /// A pipe, default capacity.
    Pipe,
    /// A pipe enlarged with `F_SETPIPE_SZ`.
    PipeBig,
}

/// Every mechanism, in report order.
pub const MECHANISMS: [Mechanism; 6] = [
    Mechanism::ShmBlock,
    Mechanism::ShmSpin,
    Mechanism::Mq,
    Mechanism::UnixSocket,
    Mechanism::Pipe,
    Mechanism::PipeBig,
];

impl Mechanism {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Mechanism::ShmBlock => "shm-frames Block",
            Mechanism::ShmSpin => "shm-frames Spin",
            Mechanism::Mq => "POSIX mq (chunked)",
            Mechanism::UnixSocket => "Unix stream socket",
            Mechanism::Pipe => "pipe (default)",
            Mechanism::PipeBig => "pipe (F_SETPIPE_SZ)",
        }
    }

    /// Whether it copies the frame through the kernel (everything but shm).
    pub fn copies(self) -> bool {
        !matches!(self, Mechanism::ShmBlock | Mechanism::ShmSpin)
    }

    fn copy_kind(self) -> Option<CopyKind> {
        match self {
            Mechanism::ShmBlock | Mechanism::ShmSpin => None,
            Mechanism::Mq => Some(CopyKind::Mq),
            Mechanism::UnixSocket => Some(CopyKind::UnixSocket),
            Mechanism::Pipe => Some(CopyKind::Pipe),
            Mechanism::PipeBig => Some(CopyKind::PipeBig),
        }
    }

    fn strategy(self) -> WaitStrategy {
        if self == Mechanism::ShmSpin {
            WaitStrategy::Spin
        } else {
            WaitStrategy::Block
        }
    }
}

/// How long each case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Whether this is the `--quick` plan.
    pub quick: bool,
    /// Samples per latency case.
    pub latency: Budget,
    /// Measuring window per throughput case.
    pub window: Duration,
    /// Frames per fan-out run.
    pub fanout_frames: usize,
}

impl Plan {
    /// Under two minutes on a 2-core VM: few samples, short windows.
    pub fn quick() -> Plan {
        Plan {
            quick: true,
            latency: Budget {
                count: 60,
                min: 10,
                time: Duration::from_millis(300),
            },
            window: Duration::from_millis(200),
            fanout_frames: 60,
        }
    }

    /// The full run: minutes.
    pub fn full() -> Plan {
        Plan {
            quick: false,
            latency: Budget {
                count: 1000,
                min: 50,
                time: Duration::from_secs(5),
            },
            window: Duration::from_secs(2),
            fanout_frames: 1000,
        }
    }
}

/// One mechanism at one size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The size.
    pub size: Size,
    /// Handoff at one frame per period.
    pub latency: Latency,
    /// Flat out, every byte written and read.
    pub rate: Rate,
}

/// Everything the report is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// The plan that ran.
    pub plan: Plan,
    /// Mechanism × size.
    pub cells: Vec<Cell>,
    /// Private writes per size: the memory-bandwidth ceiling.
    pub ceiling: Vec<(Size, Rate)>,
    /// Wake-up primitives alone.
    pub wakes: Vec<(Primitive, Latency)>,
    /// Small messages both ways.
    pub round_trips: Vec<(RoundTrip, Latency)>,
    /// Fan-out runs.
    pub fanouts: Vec<Fanout>,
    /// How the copying mechanisms were set up (mq msgsize, pipe capacities).
    pub setup: Vec<(Mechanism, String)>,
    /// `/proc/loadavg` before and after.
    pub loadavg: (String, String),
    /// CPUs available; whether the processes were pinned apart.
    pub cpus: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Results {
    /// The cell of `mechanism` at `size`.
    pub fn cell(&self, mechanism: Mechanism, size: Size) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.mechanism == mechanism && c.size == size)
    }

    /// The ceiling at `size`.
    pub fn ceiling_at(&self, size: Size) -> Option<Rate> {
        self.ceiling
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(_, r)| *r)
    }

    /// The wake-up of `primitive`.
    pub fn wake(&self, primitive: Primitive) -> Option<Latency> {
        self.wakes
            .iter()
            .find(|(p, _)| *p == primitive)
            .map(|(_, l)| *l)
    }

    /// The round trip `kind`.
    pub fn round_trip(&self, kind: RoundTrip) -> Option<Latency> {
        self.round_trips
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, l)| *l)
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A latency case of `mechanism` at `size`, ready to sample.
#[derive(Debug)]
pub enum HandoffCase {
    /// shm-frames.
    Shm(ShmReceiver),
    /// A copying mechanism.
    Copy(CopyReceiver),
}

impl HandoffCase {
    /// Starts the writer child on `cpu`, paced (latency) or flat out (throughput).
    pub fn start(mechanism: Mechanism, size: Size, flat: bool, cpu: usize) -> Result<HandoffCase> {
        Ok(match mechanism.copy_kind() {
            None => {
                let mode = if flat { ShmMode::Flat } else { ShmMode::Period };
                HandoffCase::Shm(ShmReceiver::start(size, mode, mechanism.strategy(), cpu)?)
            }
            Some(kind) => {
                let pace = if flat { Pace::Flat } else { Pace::Period };
                HandoffCase::Copy(CopyReceiver::start(kind, size.bytes(), pace, cpu)?)
            }
        })
    }

    /// One handoff, ns (paced writer).
    pub fn sample(&mut self) -> Result<u64> {
        match self {
            HandoffCase::Shm(s) => s.sample(),
            HandoffCase::Copy(c) => c.sample(),
        }
    }

    /// One frame received and read in full (flat-out writer).
    pub fn frame(&mut self) -> Result<()> {
        match self {
            HandoffCase::Shm(s) => s.frame(),
            HandoffCase::Copy(c) => c.frame(),
        }
    }

    /// How the mechanism was set up, if it has settings worth reporting.
    pub fn detail(&self) -> Option<&str> {
        match self {
            HandoffCase::Shm(_) => None,
            HandoffCase::Copy(c) => Some(&c.detail),
        }
    }
}

/// Runs the whole matrix, calling `progress` with a line before each step.
pub fn run(plan: Plan, progress: &mut dyn FnMut(&str)) -> Result<Results> {
    let started = Instant::now();
    let load_before = loadavg();
    // Counted before pinning: afterwards this process sees only its own CPU.
    let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (here, there) = cpus();
    pin(here)?;
    let steps = MECHANISMS.len() * SIZES.len() * 2
        + SIZES.len()
        + PRIMITIVES.len()
        + ROUND_TRIPS.len()
        + CONSUMERS.len();
    let mut step = 0;
    let mut next = |what: &str| {
        step += 1;
        progress(&format!(
            "[{step:>3}/{steps}] {:>5.1} s  {what}",
            started.elapsed().as_secs_f64()
        ));
    };
    let mut cells = Vec::new();
    let mut ceiling = Vec::new();
    let mut setup = Vec::new();
    for mechanism in MECHANISMS {
        for size in SIZES {
            next(&format!(
                "handoff latency  {} {}",
                mechanism.label(),
                size.label
            ));
            let mut case = HandoffCase::start(mechanism, size, false, there)?;
            if let Some(detail) = case.detail() {
                if !setup.iter().any(|(m, _)| *m == mechanism) {
                    setup.push((mechanism, detail.to_owned()));
                }
            }
            let latency = collect(plan.latency, || case.sample())?;
            drop(case);
            next(&format!(
                "throughput       {} {}",
                mechanism.label(),
                size.label
            ));
            let mut case = HandoffCase::start(mechanism, size, true, there)?;
            let rate = rate_for(plan.window, size.bytes(), || case.frame())?;
            drop(case);
            if mechanism == MECHANISMS[0] {
                // The ceiling right beside shm's own throughput case of this size: the
                // machine's load changes over a run, and only neighbours compare.
                next(&format!("ceiling          private writes {}", size.label));
                ceiling.push((size, private_write(plan.window, size.bytes())?));
            }
            cells.push(Cell {
                mechanism,
                size,
                latency,
                rate,
            });
        }
    }
    let mut wakes = Vec::new();
    for primitive in PRIMITIVES {
        next(&format!("wake-up          {}", primitive.label()));
        let mut case = WakeCase::start(primitive, there)?;
        wakes.push((primitive, collect(plan.latency, || case.sample())?));
    }
    let mut round_trips = Vec::new();
    for kind in ROUND_TRIPS {
        next(&format!("round trip       {}", kind.label()));
        let mut case = RoundTripCase::start(kind, there)?;
        round_trips.push((kind, collect(plan.latency, || case.sample())?));
    }
    let mut fanouts = Vec::new();
    for consumers in CONSUMERS {
        next(&format!(
            "fan-out          {consumers} consumer(s) of 1920x1080"
        ));
        fanouts.push(fanout::run(consumers, plan.fanout_frames, here, there)?);
    }
    let limit = format!(
        "; fs.mqueue.msgsize_max = {} B, the largest message an unprivileged queue may have",
        mq::msgsize_max()?
    );
    if let Some((_, detail)) = setup.iter_mut().find(|(m, _)| *m == Mechanism::Mq) {
        detail.push_str(&limit);
    }
    Ok(Results {
        plan,
        cells,
        ceiling,
        wakes,
        round_trips,
        fanouts,
        setup,
        loadavg: (load_before, loadavg()),
        cpus: cpu_count,
        elapsed: started.elapsed(),
    })
}

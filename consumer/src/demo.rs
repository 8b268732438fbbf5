//! `consumer demo`: starts a producer in a child process and views its stream (or, with no
//! display, measures it for a few seconds). The child is the consumer binary itself running
//! the producer library (a hidden subcommand), so one `cargo run` builds everything.
//!
//! The child is stopped when the demo ends, whatever the way: [`ProducerChild`] sends it
//! SIGTERM on drop (and SIGKILL if it does not exit in time), and the child asks the kernel
//! for SIGTERM should this process die first.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use producer::{ProducerArgs, RunError as ProducerError};

use crate::error::Error;
use crate::session::{Attach, End, Session};
use crate::stats::{self, Limit, Progress, StatsOptions, Summary};
use crate::view::{self, ViewOptions, Viewed};

/// The environment variable through which a child learns which process must be alive for
/// it to go on (it asks for SIGTERM when its parent dies).
pub const PARENT_ENV: &str = "FRAMEPIPE_PARENT_PID";

/// How long a stopped child gets to exit cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How to run the demo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// The program that runs the producer (the consumer binary itself).
    pub program: PathBuf,
    /// Its arguments (the hidden subcommand, then the producer's options).
    pub args: Vec<OsString>,
    /// The demo stream (its name must match the producer's `--stream`).
    pub attach: Attach,
    /// What the viewer does.
    pub view: ViewOptions,
    /// How long to measure when there is no display.
    pub headless_for: Duration,
}

/// What the demo did.
#[derive(Debug)]
pub enum Demoed {
    /// It showed the stream in a window.
    Viewed(Viewed),
    /// It had no display and measured the stream instead.
    Measured(End, Box<Summary>),
}

/// A producer child process, stopped on drop.
#[derive(Debug)]
pub struct ProducerChild {
    child: Child,
    program: String,
}

impl ProducerChild {
    /// Starts `program args...` with standard input closed and its standard output sent to
    /// our standard error (ours stays for results).
    pub fn spawn(program: &PathBuf, args: &[OsString]) -> Result<ProducerChild, Error> {
        let name = program.display().to_string();
        let spawn_error = |source| Error::Spawn {
            program: name.clone(),
            source,
        };
        let stderr = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(spawn_error)?;
        let child = Command::new(program)
            .args(args)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr))
            .spawn()
            .map_err(spawn_error)?;
        tracing::info!(pid = child.id(), "producer started");
        Ok(ProducerChild {
            child,
            program: name,
        })
    }

    /// Fails if the child has exited.
    pub fn check(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::ProducerExited { status }),
            Err(source) => Err(Error::Spawn {
                program: self.program.clone(),
                source,
            }),
        }
    }
}

impl Drop for ProducerChild {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        // Our own child, not yet reaped: the pid cannot name another process.
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                tracing::info!(%status, "producer stopped");
                return;
            }
            // Nothing signals a child's exit to us here but polling (it is not on any
            // frame's path, and it ends within the grace period).
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!("producer did not stop in time; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a child started by [`ProducerChild`]: runs the producer library with `config` until its
/// stream ends, as the `producer` binary would.
/// Returns `Ok(())` at once if the parent is already gone.
pub fn run_producer(config: &producer::Config) -> Result<(), ProducerError> {
    if !die_with_parent() {
        return Ok(());
    }
    producer::run(config).map(drop)
}

/// In a child started by [`ProducerChild`]: asks the kernel for SIGTERM when the parent
/// dies, so a killed demo (or test) never leaves its producer behind. Returns `false` if the
/// parent is already gone (the caller should exit at once).
fn die_with_parent() -> bool {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return true;
    };
    if let Err(error) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        tracing::warn!(%error, "cannot ask to die with the parent");
    }
    // The parent may have died before the request: then we were reparented.
    nix::unistd::getppid() == Pid::from_raw(parent)
}

/// Runs the demo: starts the producer, waits for its stream, then views it (or measures it
/// for `headless_for` when there is no display, calling `progress` as `stats` does).
pub fn run(
    options: &DemoOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Demoed, Error> {
    let mut child = ProducerChild::spawn(&options.program, &options.args)?;
    let mut session = Session::open_checking(options.attach.clone(), stop, || child.check())?;
    match view::run(&mut session, &options.view, stop) {
        Ok(viewed) => Ok(Demoed::Viewed(viewed)),
        Err(Error::NoDisplay { reason }) => {
            tracing::warn!(
                "no display ({reason}): measuring the stream for {:?} instead of showing it",
                options.headless_for
            );
            let stats_options = StatsOptions {
                limit: Limit::Duration(options.headless_for),
                verify: true,
            };
            let (end, summary) = stats::run(&mut session, &stats_options, stop, progress)?;
            Ok(Demoed::Measured(end, Box::new(summary)))
        }
        Err(e) => Err(e),
    }
}

//! Child processes for the cross-process cases: this very binary re-executed in a role
//! (named by [`ROLE_ENV`]), pinned to a CPU, killed and reaped on drop, so a failed or
//! interrupted run leaves no process behind. Also CPU pinning and unique object names.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{MeasureError, Result, errno, sys};

/// The role a re-executed child plays.
pub const ROLE_ENV: &str = "FRAMEPIPE_MECH_ROLE";
/// The role's arguments, `key=value` pairs separated by `;`.
pub const ARGS_ENV: &str = "FRAMEPIPE_MECH_ARGS";
/// The CPU the child pins itself to.
pub const CPU_ENV: &str = "FRAMEPIPE_MECH_CPU";

/// How long a child may take to say READY.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Pins the calling thread (and the threads it starts later) to `cpu`.
pub fn pin(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(errno(format!("cpu {cpu}")))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(errno("sched_setaffinity"))
}

/// The CPUs to measure on: (the measuring process's, the other process's). Different
/// CPUs when there are two or more, else both 0.
pub fn cpus() -> (usize, usize) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (usize::from(n > 1), 0)
}

/// A name unique to this process and call: `{prefix}{pid}-{n}`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id())
}

/// A running child; killed and reaped on drop.
#[derive(Debug)]
pub struct Child {
    role: String,
    child: std::process::Child,
    lines: Receiver<String>,
}

impl Child {
    /// Starts this binary in `role` with `args`, pinned to `cpu`, and waits for its READY
    /// line.
    pub fn spawn(role: &str, args: &[(&str, String)], cpu: usize) -> Result<Child> {
        let exe = std::env::current_exe().map_err(sys("own executable"))?;
        let joined = args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let mut child = Command::new(exe)
            .env(ROLE_ENV, role)
            .env(ARGS_ENV, joined)
            .env(CPU_ENV, cpu.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(sys(format!("spawn child `{role}`")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let child = Child {
            role: role.to_owned(),
            child,
            lines,
        };
        let first = child.line(START_TIMEOUT)?;
        if first != "READY" {
            return Err(child.failed(format!("said {first:?} instead of READY")));
        }
        Ok(child)
    }

    /// The child's next stdout line, within `timeout`.
    pub fn line(&self, timeout: Duration) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(MeasureError::Timeout(format!(
                "a line from child `{}`",
                self.role
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(self.failed("exited".into())),
        }
    }

    fn failed(&self, reason: String) -> MeasureError {
        MeasureError::Child {
            role: self.role.clone(),
            reason,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a child was started with.
#[derive(Debug, Clone)]
pub struct Args(BTreeMap<String, String>);

impl Args {
    /// Parses `k=v;k=v`.
    pub fn parse(raw: &str) -> Args {
        Args(
            raw.split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| MeasureError::Data(format!("child argument `{key}` missing")))
    }

    /// The value of `key`, parsed.
    pub fn parse_of<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let raw = self.get(key)?;
        raw.parse()
            .map_err(|_| MeasureError::Data(format!("child argument `{key}={raw}` is invalid")))
    }
}

/// A child's entry point.
pub type RoleFn = fn(&Args) -> Result<()>;

/// If this process was started as a child, runs its role (looked up in `roles`) and returns
/// the exit code; otherwise returns `None` and the caller goes on as the parent.
pub fn run_if_child(roles: &[(&str, RoleFn)]) -> Option<ExitCode> {
    let role = std::env::var(ROLE_ENV).ok()?;
    // Die with the parent, never linger.
    let _ = set_pdeathsig(Signal::SIGKILL);
    let args = Args::parse(&std::env::var(ARGS_ENV).unwrap_or_default());
    let cpu = std::env::var(CPU_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let result = pin(cpu).and_then(|()| match roles.iter().find(|(name, _)| *name == role) {
        Some((_, run)) => run(&args),
        None => Err(MeasureError::Data(format!("unknown role {role}"))),
    });
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("child {role}: error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// Writes one line to stdout, flushed (READY, results).
pub fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(sys("write to the parent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_and_missing_keys_are_errors() {
        let args = Args::parse("size=4096;path=/tmp/x");
        assert_eq!(args.parse_of::<usize>("size").unwrap(), 4096);
        assert_eq!(args.get("path").unwrap(), "/tmp/x");
        assert!(args.get("nope").is_err());
        assert!(args.parse_of::<usize>("path").is_err());
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique("/fp"), unique("/fp"));
    }
}

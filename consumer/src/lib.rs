//! `consumer`: the viewer, headless measurement, recording and the demo of framepipe.
//!
//! Every command attaches a [`Session`] to a stream (a seat of its region, plus the
//! best-effort control queues) and drives its one follower, [`Session::step`], which hands
//! out one [`Outcome`] per call (frames, the producer lost and found again across restarts
//! and format changes) until an [`End`] or an [`Error`]; the `consumer` binary turns those
//! into DESIGN.md's exit codes. This library never prints or exits: it logs through `tracing`
//! and hands results back.
//!
//! - [`session`]: attach, follow, reattach within `--wait` (the retry policy), queues.
//! - [`stats`]: frame rate, skipped/torn/corrupt, latency histograms ([`latency`]).
//! - [`record`] (Y4M via [`y4m`]), [`pipe`] (raw frames), [`snapshot`] (PNG), written
//!   through [`output`] so no partial file is ever left claiming success.
//! - [`view`]: the minifb window; [`demo`]: a producer child plus the viewer.
//! - [`inspect`] (`list`, `info`), [`ctl`] (commands with answers) and [`meta`] (the
//!   per-frame metadata): the control queue for people.
#![forbid(unsafe_code)]

pub mod ctl;
pub mod demo;
pub mod duration;
pub mod error;
pub mod inspect;
pub mod latency;
pub mod meta;
pub mod output;
pub mod pipe;
pub mod record;
pub mod session;
pub mod snapshot;
pub mod stats;
mod untaken;
pub mod view;
pub mod y4m;

pub use duration::{InvalidDuration, parse_duration};
pub use error::{Error, Unattached};
pub use session::{Attach, End, OnStop, Outcome, Session};

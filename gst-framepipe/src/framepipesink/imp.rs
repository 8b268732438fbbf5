//! The `framepipesink` implementation: caps become a region, buffers become published
//! slots, and a service thread keeps the stream alive (heartbeat, seat reclaim, commands).
//!
//! Ownership follows DESIGN.md: `start` claims the name and creates the control queues,
//! the first caps create the region, a caps change of size or format replaces it (the
//! next epoch, as `SetFormat` does), `stop` ends the stream cleanly (Stopping, every seat
//! woken, everything unlinked).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use control_msg::{Command, CommandReceiver, Event, EventSender, QueueConfig, Sent};
use frame_vocab::{StreamName, StreamOwner, monotonic_ns};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use shm_frames::{MAX_SEATS, RegionBuilder, ReplaceError, Supervisor, Writer};

use crate::caps;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "framepipesink",
        gst::DebugColorFlags::empty(),
        Some("framepipe producer sink"),
    )
});

/// How often the service thread stamps the heartbeat (DESIGN: at least every 100 ms).
const BEAT: Duration = Duration::from_millis(50);

/// How long `wait-for-consumers` sleeps between looks at the seats (it also wakes on
/// `unlock`).
const SEAT_POLL: Duration = Duration::from_millis(10);

const DEFAULT_STREAM: &str = frame_vocab::DEFAULT_STREAM;
const DEFAULT_SEATS: u32 = 1;
const DEFAULT_MODE: &str = "0600";
const DEFAULT_WAIT_FOR_CONSUMERS: u32 = 0;
const DEFAULT_STALL_TIMEOUT_MS: u32 = shm_frames::DEFAULT_STALL_TIMEOUT.as_millis() as u32;

#[derive(Clone, Debug)]
struct Settings {
    stream: String,
    seats: u32,
    mode: String,
    wait_for_consumers: u32,
    no_backpressure: bool,
    /// Milliseconds; 0 waits for an every-frame consumer as long as it lives.
    stall_timeout_ms: u32,
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
        }
    }
}

/// Longest one wait for an every-frame consumer lasts before `render` looks at the
/// flushing flag (`unlock` also wakes it at once).
const DELIVERY_SLICE: Duration = Duration::from_millis(100);

/// Parses the `mode` property: DESIGN.md accepts 0600 and 0660, nothing else.
fn parse_mode(mode: &str) -> Option<u32> {
    let digits = mode.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode @ (0o600 | 0o660)) => Some(mode),
        _ => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked; the data is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the streaming thread and the service thread share.
#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    /// The current region's supervisor (none before the first caps).
    supervisor: Mutex<Option<Supervisor>>,
    /// One event queue per seat (none where it could not be created).
    events: Mutex<Vec<Option<EventSender>>>,
}

impl Shared {
    /// Sends `event` to every occupied seat of the region `supervisor` follows, then wakes
    /// the seat (consumers look at their queue after each wake). Never blocks.
    fn broadcast(&self, supervisor: &Supervisor, event: &Event) {
        let mut events = lock(&self.events);
        for seat in supervisor.seats() {
            if let Some(Some(sender)) = events.get_mut(seat.seat as usize)
                && let Ok(Sent::DroppedFull) | Err(_) = sender.send(event)
            {
                gst::trace!(CAT, "event to seat {} dropped", seat.seat);
            }
            supervisor.wake(seat.seat);
        }
    }
}

/// The stream while the element is started.
struct Started {
    owner: StreamOwner,
    seats: u32,
    mode: u32,
    /// The region: created by the first caps.
    writer: Option<Writer>,
    info: Option<gst_video::VideoInfo>,
    shared: Arc<Shared>,
    service: Option<JoinHandle<()>>,
    /// Buffers dropped because no slot was free (only garbage holds cause that).
    skipped: u64,
}

impl Started {
    /// Ends the stream: `Stopping` to every seat, the service thread joined, the region
    /// retired (Stopping, seats woken, name unlinked), the queues unlinked.
    fn end(mut self) {
        if let Some(supervisor) = lock(&self.shared.supervisor).clone() {
            self.shared.broadcast(&supervisor, &Event::Stopping);
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(service) = self.service.take() {
            service.thread().unpark();
            let _ = service.join();
        }
        drop(self.writer.take());
        lock(&self.shared.events).clear();
        gst::debug!(CAT, "stream {} ended", self.owner.name());
    }
}

/// `unlock` support: render's waits look at this flag and sleep on the condvar.
#[derive(Debug, Default)]
struct Flushing {
    flag: Mutex<bool>,
    cond: Condvar,
}

#[derive(Default)]
pub struct FramepipeSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<Started>>,
    flushing: Flushing,
    /// The current region's supervisor, outside `state` (which `render` holds while it
    /// waits for an every-frame consumer), so `unlock` can wake that wait.
    waker: Mutex<Option<Supervisor>>,
}

impl std::fmt::Debug for FramepipeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramepipeSink")
            .field("settings", &*lock(&self.settings))
            .finish_non_exhaustive()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FramepipeSink {
    const NAME: &'static str = "GstFramepipeSink";
    type Type = super::FramepipeSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for FramepipeSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
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
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "stream" => {
                settings.stream = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_STREAM.to_owned());
            }
            "seats" => settings.seats = value.get().expect("type checked upstream"),
            "mode" => {
                settings.mode = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_MODE.to_owned());
            }
            "wait-for-consumers" => {
                settings.wait_for_consumers = value.get().expect("type checked upstream");
                drop(settings);
                // A render waiting for consumers looks again.
                self.flushing.cond.notify_all();
            }
            "no-backpressure" => {
                settings.no_backpressure = value.get().expect("type checked upstream");
            }
            "stall-timeout" => {
                settings.stall_timeout_ms = value.get().expect("type checked upstream");
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "stream" => settings.stream.to_value(),
            "seats" => settings.seats.to_value(),
            "mode" => settings.mode.to_value(),
            "wait-for-consumers" => settings.wait_for_consumers.to_value(),
            "no-backpressure" => settings.no_backpressure.to_value(),
            "stall-timeout" => settings.stall_timeout_ms.to_value(),
            // GObject only asks for the properties declared above.
            other => {
                gst::warning!(CAT, imp = self, "unknown property {other}");
                None::<String>.to_value()
            }
        }
    }
}

impl GstObjectImpl for FramepipeSink {}

impl ElementImpl for FramepipeSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "framepipe sink",
                "Sink/Video",
                "Makes the pipeline the producer of a framepipe stream: raw frames in \
                 shared memory for consumers on this machine",
                "framepipe developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps::sink_template_caps(),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for FramepipeSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let name = StreamName::new(&settings.stream)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("stream: {e}")))?;
        let mode = parse_mode(&settings.mode).ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ("mode {:?}: only 0600 and 0660 are accepted", settings.mode)
            )
        })?;
        let owner = StreamOwner::claim(&name)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Busy, ("{e}")))?;
        let queue_config = QueueConfig::new().mode(mode);
        let commands = CommandReceiver::create(&owner, &queue_config).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ("cannot create the command queue of stream {name}: {e}")
            )
        })?;
        let events = (0..settings.seats)
            .map(
                |seat| match EventSender::create(&owner, seat, &queue_config) {
                    Ok(sender) => Some(sender),
                    Err(e) => {
                        // Best-effort: the region's state is authoritative without them.
                        gst::warning!(CAT, imp = self, "no event queue for seat {seat}: {e}");
                        None
                    }
                },
            )
            .collect();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            supervisor: Mutex::new(None),
            events: Mutex::new(events),
        });
        let service = {
            let shared = shared.clone();
            let element = self.obj().downgrade();
            std::thread::Builder::new()
                .name(format!("framepipe-{name}"))
                .spawn(move || serve(&element, commands, &shared))
                .map_err(|e| {
                    gst::error_msg!(
                        gst::CoreError::Thread,
                        ("cannot start the service thread: {e}")
                    )
                })?
        };
        gst::info!(
            CAT,
            imp = self,
            "producing stream {name} ({} seat(s), mode {mode:04o})",
            settings.seats
        );
        *lock(&self.state) = Some(Started {
            owner,
            seats: settings.seats,
            mode,
            writer: None,
            info: None,
            shared,
            service: Some(service),
            skipped: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.waker) = None;
        if let Some(started) = lock(&self.state).take() {
            if started.skipped > 0 {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{} buffers dropped for want of a free slot",
                    started.skipped
                );
            }
            started.end();
        }
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let (info, format) = match caps::parse(caps) {
            Ok(parsed) => parsed,
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{e}"));
                return Err(gst::loggable_error!(CAT, "refused caps {caps}: {e}"));
            }
        };
        let settings = lock(&self.settings).clone();
        let mut state = lock(&self.state);
        let Some(started) = state.as_mut() else {
            return Err(gst::loggable_error!(CAT, "caps before start"));
        };
        match started.writer.as_mut() {
            None => {
                let writer = RegionBuilder::new(&started.owner, format)
                    .seats(started.seats)
                    .mode(started.mode)
                    .no_backpressure(settings.no_backpressure)
                    .stall_timeout(
                        (settings.stall_timeout_ms > 0)
                            .then(|| Duration::from_millis(settings.stall_timeout_ms.into())),
                    )
                    .create()
                    .map_err(|e| {
                        gst::element_imp_error!(
                            self,
                            gst::ResourceError::OpenWrite,
                            ("cannot create the frame region of {format}: {e}")
                        );
                        gst::loggable_error!(CAT, "region creation failed: {e}")
                    })?;
                gst::info!(
                    CAT,
                    imp = self,
                    "stream {} is {format}, epoch {}",
                    started.owner.name(),
                    writer.epoch()
                );
                *lock(&started.shared.supervisor) = Some(writer.supervisor());
                *lock(&self.waker) = Some(writer.supervisor());
                started.writer = Some(writer);
            }
            Some(writer) if writer.format() != format => {
                // A new size or pixel format: a new region, epoch + 1, as SetFormat does.
                let old = writer.supervisor();
                let old_format = writer.format();
                let replaced = writer.replace(format);
                *lock(&started.shared.supervisor) = Some(writer.supervisor());
                *lock(&self.waker) = Some(writer.supervisor());
                started.shared.broadcast(
                    &old,
                    &Event::FormatChanged {
                        epoch: writer.epoch(),
                    },
                );
                match replaced {
                    Ok(()) => gst::info!(
                        CAT,
                        imp = self,
                        "format {old_format} -> {format}, epoch {}",
                        writer.epoch()
                    ),
                    Err(e @ (ReplaceError::Refused(_) | ReplaceError::Lost { .. })) => {
                        gst::element_imp_error!(
                            self,
                            gst::ResourceError::OpenWrite,
                            ("cannot switch the stream to {format}: {e}")
                        );
                        return Err(gst::loggable_error!(CAT, "replace failed: {e}"));
                    }
                }
            }
            // Same bytes (BGRx <-> BGRA, another frame rate): the region stays.
            Some(_) => gst::debug!(CAT, imp = self, "caps {caps}: same frame format"),
        }
        started.info = Some(info);
        Ok(())
    }

    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        // Buffers with any stride are fine: rows are copied one by one.
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        self.parent_propose_allocation(query)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.wait_for_consumers()?;
        let capture_ns = self.capture_ns(buffer.pts());
        let mut state = lock(&self.state);
        let Some(started) = state.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let (Some(writer), Some(info)) = (started.writer.as_mut(), started.info.as_ref()) else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let format = writer.format();
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
            .map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "buffer of {} bytes does not hold a {format} frame",
                        buffer.size()
                    )
                );
                gst::FlowError::Error
            })?;
        let Some(mut slot) = writer.slot() else {
            // Only garbage holds leave no slot free: skip, count, never wait.
            started.skipped += 1;
            gst::debug!(CAT, imp = self, "no free slot: buffer dropped");
            return Ok(gst::FlowSuccess::Ok);
        };
        caps::copy_to_packed(&frame, format, &mut slot).map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Format, ("{e}"));
            gst::FlowError::Error
        })?;
        // Every-frame consumers: publish once they have taken the previous frame; a flush
        // or a state change (`unlock`) abandons this buffer instead.
        while !slot.await_delivery(DELIVERY_SLICE) {
            if *lock(&self.flushing.flag) {
                return Err(gst::FlowError::Flushing);
            }
        }
        let mut events = lock(&started.shared.events);
        let published = slot.publish_with(capture_ns, |seat, published| {
            if let Some(Some(sender)) = events.get_mut(seat as usize) {
                let _ = sender.send(&Event::FrameMeta {
                    seq: published.seq,
                    slot: published.slot,
                    format,
                    capture_ns: published.capture_ns,
                    publish_ns: published.publish_ns,
                    flags: 0,
                });
            }
        });
        drop(events);
        gst::trace!(
            CAT,
            imp = self,
            "published seq {} in slot {}",
            published.seq,
            published.slot
        );
        Ok(gst::FlowSuccess::Ok)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.flushing.flag) = true;
        self.flushing.cond.notify_all();
        // A render waiting for an every-frame consumer looks at the flag now.
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker.wake_frame_thread();
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.flushing.flag) = false;
        Ok(())
    }
}

impl FramepipeSink {
    /// Blocks while fewer than `wait-for-consumers` consumers sit on the stream; `unlock`
    /// (a flush or a state change) ends the wait with `Flushing`.
    fn wait_for_consumers(&self) -> Result<(), gst::FlowError> {
        let supervisor = {
            let state = lock(&self.state);
            let Some(started) = state.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            lock(&started.shared.supervisor).clone()
        };
        let Some(supervisor) = supervisor else {
            return Ok(()); // No region yet: render reports the missing caps.
        };
        let mut flushing = lock(&self.flushing.flag);
        let mut announced = false;
        loop {
            if *flushing {
                return Err(gst::FlowError::Flushing);
            }
            let need = lock(&self.settings).wait_for_consumers as usize;
            let live = supervisor.seats().iter().filter(|seat| seat.live).count();
            if live >= need {
                return Ok(());
            }
            if !announced {
                gst::info!(
                    CAT,
                    imp = self,
                    "waiting for {need} consumer(s), {live} there"
                );
                announced = true;
            }
            flushing = self
                .flushing
                .cond
                .wait_timeout(flushing, SEAT_POLL)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// The buffer's capture time on CLOCK_MONOTONIC:
    /// `mono_now − (clock_now − (base_time + running_time(PTS)))`. `None` (publish time)
    /// without a PTS, a clock or a TIME segment.
    fn capture_ns(&self, pts: Option<gst::ClockTime>) -> Option<u64> {
        let obj = self.obj();
        let pts = pts?;
        let segment = obj.segment();
        let segment = segment.downcast_ref::<gst::ClockTime>()?;
        let running_time = segment.to_running_time(pts)?;
        let clock = obj.clock()?;
        let base_time = obj.base_time()?;
        let clock_now = clock.time()?;
        let mono_now = monotonic_ns();
        let age = i128::from(clock_now.nseconds())
            - i128::from(base_time.nseconds())
            - i128::from(running_time.nseconds());
        u64::try_from((i128::from(mono_now) - age).max(0)).ok()
    }
}

/// The service thread: heartbeat and seat reclaim every [`BEAT`], and the control queue.
/// It shares no lock with the streaming thread across a frame.
fn serve(
    element: &glib::WeakRef<super::FramepipeSink>,
    mut commands: CommandReceiver,
    shared: &Shared,
) {
    let mut queue_ok = true;
    while !shared.stop.load(Ordering::Relaxed) {
        let first = if queue_ok {
            match commands.recv_timeout(BEAT) {
                Ok(command) => command,
                Err(e) => {
                    gst::warning!(CAT, "command queue failed, going on without it: {e}");
                    queue_ok = false;
                    None
                }
            }
        } else {
            std::thread::park_timeout(BEAT);
            None
        };
        let supervisor = lock(&shared.supervisor).clone();
        if let Some(supervisor) = &supervisor {
            for seat in supervisor.beat() {
                gst::info!(
                    CAT,
                    "reclaimed seat {} of dead consumer pid {}",
                    seat.seat,
                    seat.pid
                );
            }
        }
        let mut next = first;
        // Bounded per tick (a full queue holds 10): a flood must not starve the heartbeat.
        let mut budget = 32u32;
        while let Some(command) = next {
            apply(element, shared, supervisor.as_ref(), command);
            budget -= 1;
            next = if queue_ok && budget > 0 {
                commands.try_recv().ok().flatten()
            } else {
                None
            };
        }
    }
    // Dropping the receiver unlinks the command queue.
}

/// Why the element refuses a command, or `None` if it serves it.
fn refusal(command: &Command) -> Option<&'static str> {
    match command {
        Command::SetFps { .. } => Some("the pipeline sets the frame rate (videorate upstream)"),
        Command::SetFormat(_) => Some("the pipeline's caps set the format (a capsfilter upstream)"),
        Command::SetPattern(_) => {
            Some("framepipesink draws no pattern: the pipeline makes the frames")
        }
        Command::Pause | Command::Resume => Some("the pipeline's state decides (set it to PAUSED)"),
        Command::Shutdown => Some("the application that runs the pipeline decides when it ends"),
        Command::Hello { .. } | Command::Bye { .. } | Command::Ping { .. } => None,
        // No reply queues here (`consumer ctl` says so): judged as the plain command.
        Command::Request(asked) => refusal(&asked.command),
    }
}

fn apply(
    element: &glib::WeakRef<super::FramepipeSink>,
    shared: &Shared,
    supervisor: Option<&Supervisor>,
    command: Command,
) {
    if let Some(reason) = refusal(&command) {
        // The control queue has no reply message yet (see the README): the refusal is a
        // warning on the bus and in the log.
        if let Some(element) = element.upgrade() {
            gst::element_warning!(
                element,
                gst::CoreError::NotImplemented,
                ("refused {command:?}: {reason}")
            );
        }
        return;
    }
    match command {
        Command::Hello { seat, pid } => gst::info!(CAT, "consumer pid {pid} on seat {seat}"),
        Command::Bye { seat } => gst::info!(CAT, "consumer on seat {seat} left"),
        Command::Ping { nonce } => {
            if let Some(supervisor) = supervisor {
                shared.broadcast(supervisor, &Event::Pong { nonce });
            }
        }
        other => gst::debug!(CAT, "unexpected command {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_vocab::FrameFormat;

    #[test]
    fn mode_accepts_only_0600_and_0660() {
        assert_eq!(parse_mode("0600"), Some(0o600));
        assert_eq!(parse_mode("660"), Some(0o660));
        assert_eq!(parse_mode("0o660"), Some(0o660));
        assert_eq!(parse_mode("0644"), None);
        assert_eq!(parse_mode("0666"), None);
        assert_eq!(parse_mode("rw"), None);
    }

    #[test]
    fn commands_the_pipeline_decides_are_refused_with_a_reason() {
        for command in [
            Command::SetFps { fps: 30.0 },
            Command::SetFormat(FrameFormat::new(64, 64, frame_vocab::PixelFormat::Bgra).unwrap()),
            Command::SetPattern(frame_vocab::PatternKind::Bars),
        ] {
            assert!(refusal(&command).is_some(), "{command:?}");
        }
        assert_eq!(refusal(&Command::Ping { nonce: 7 }), None);
        assert_eq!(refusal(&Command::Hello { seat: 0, pid: 1 }), None);
    }
}

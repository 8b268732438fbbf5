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

use control_msg::{CommandReceiver, Event, EventSender, QueueConfig};
use frame_vocab::{StreamName, StreamOwner, monotonic_ns};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use shm_frames::{RegionBuilder, ReplaceError, Supervisor, Writer};

use crate::caps;

mod pool;
mod service;
mod settings;

use pool::{LenderCell, SlotPool};
use service::{Shared, serve};
use settings::{DEFAULT_MODE, DEFAULT_STREAM, Settings, parse_mode};

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

/// Longest one wait for an every-frame consumer lasts before `render` looks at the
/// flushing flag (`unlock` also wakes it at once).
const DELIVERY_SLICE: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked; the data is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
}

/// What the `stats` property reports (since the last start).
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Buffers that were lent slots, published without a copy.
    in_place: u64,
    /// Buffers copied into a slot.
    copied: u64,
    /// Buffers dropped because no slot was free (garbage holds, or slots still lent).
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
    /// The current region's lender, for the slot pools offered upstream.
    lender: LenderCell,
    stats: Mutex<Stats>,
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
    fn constructed(&self) {
        self.parent_constructed();
        // The last sample would keep the previous buffer, and with it a lent slot, alive
        // until the next render: every other buffer would then find no slot to spare.
        self.obj().set_enable_last_sample(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::param_specs);
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
            "slot-pool" => settings.slot_pool = value.get().expect("type checked upstream"),
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
            "slot-pool" => settings.slot_pool.to_value(),
            "stats" => {
                let stats = *lock(&self.stats);
                gst::Structure::builder("application/x-framepipesink-stats")
                    .field("in-place", stats.in_place)
                    .field("copied", stats.copied)
                    .field("skipped", stats.skipped)
                    .build()
                    .to_value()
            }
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
        });
        *lock(&self.stats) = Stats::default();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.waker) = None;
        *lock(&self.lender) = None;
        if let Some(started) = lock(&self.state).take() {
            let skipped = lock(&self.stats).skipped;
            if skipped > 0 {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{skipped} buffers dropped for want of a free slot"
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
                if settings.slot_pool {
                    let writer = started.writer.as_mut().expect("just set");
                    *lock(&self.lender) = Some(writer.lender());
                }
            }
            Some(writer) if writer.format() != format => {
                // A new size or pixel format: a new region, epoch + 1, as SetFormat does.
                let old = writer.supervisor();
                let old_format = writer.format();
                let replaced = writer.replace(format);
                *lock(&started.shared.supervisor) = Some(writer.supervisor());
                *lock(&self.waker) = Some(writer.supervisor());
                if settings.slot_pool {
                    *lock(&self.lender) = Some(writer.lender());
                }
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
        // Offered even when upstream says it needs no pool (gstreamer-check's Harness
        // does): it is what makes the frame land in a slot.
        let (caps, _need_pool) = query.get_owned();
        let packed = caps
            .as_ref()
            .and_then(|caps| caps::parse(caps).ok())
            .filter(|(info, format)| caps::layout_is_packed(info, *format));
        if let (true, Some((info, _))) = (lock(&self.settings).slot_pool, packed) {
            let size = u32::try_from(info.size())
                .map_err(|_| gst::loggable_error!(CAT, "frames of {} bytes", info.size()))?;
            let pool = SlotPool::new(self.lender.clone());
            let mut config = pool.config();
            config.set_params(caps.as_ref(), size, 0, 0);
            match pool.set_config(config) {
                Ok(()) => {
                    query.add_allocation_pool(Some(&pool), size, 0, 0);
                    gst::debug!(CAT, imp = self, "offered a slot pool for {info:?}");
                }
                // Upstream allocates as it would without us; the sink copies.
                Err(e) => gst::warning!(CAT, imp = self, "no slot pool for {info:?}: {e}"),
            }
        }
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
        // A buffer of the slot pool is published in place; any other is copied into a slot.
        let mut in_place = true;
        let mut ready = match pool::adopt(writer, &frame, format) {
            Some(ready) => ready,
            None => {
                in_place = false;
                let Some(mut slot) = writer.slot() else {
                    // Only garbage holds, or slots still lent, leave no slot free: skip,
                    // count, never wait.
                    lock(&self.stats).skipped += 1;
                    gst::debug!(CAT, imp = self, "no free slot: buffer dropped");
                    return Ok(gst::FlowSuccess::Ok);
                };
                caps::copy_to_packed(&frame, format, &mut slot).map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{e}"));
                    gst::FlowError::Error
                })?;
                slot.written()
            }
        };
        drop(frame);
        // Every-frame consumers: publish once they have taken the previous frame; a flush
        // or a state change (`unlock`) abandons this buffer instead.
        while !ready.await_delivery(DELIVERY_SLICE) {
            if *lock(&self.flushing.flag) {
                return Err(gst::FlowError::Flushing);
            }
        }
        {
            let mut stats = lock(&self.stats);
            if in_place {
                stats.in_place += 1;
            } else {
                stats.copied += 1;
            }
        }
        let mut events = lock(&started.shared.events);
        let published = ready.publish_with(capture_ns, |seat, published| {
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

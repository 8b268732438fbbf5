//! The `framepipesrc` implementation: a seat on a framepipe stream, each frame copied into
//! a new buffer and the slot released at once; restarts and format changes followed.
//!
//! The reader is attached lazily in the streaming thread (the first `create`), so a state
//! change never waits for a producer, and every wait is sliced so `unlock` ends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use frame_vocab::{Deadline, FrameFormat, StreamName};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use shm_frames::{Delivery, OpenError, Reader, ReaderOptions, WaitError};

use crate::caps;

mod clock;
mod settings;

use settings::{DEFAULT_STREAM, Settings};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "framepipesrc",
        gst::DebugColorFlags::empty(),
        Some("framepipe live source"),
    )
});

/// Longest a wait blocks before it looks at the flushing flag again.
const SLICE: Duration = Duration::from_millis(100);

/// Consecutive corrupt reads after which the element gives up with an error.
const MAX_CONSECUTIVE_CORRUPT: u32 = 100;

/// What the `stats` property reports.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    frames: u64,
    skipped: u64,
    reopens: u64,
    /// `every-frame`: the first frame no longer guaranteed, once demoted.
    lost_at: Option<u64>,
}

/// Negotiation state, read by `caps` and written by `set_caps` and the streaming thread.
#[derive(Debug, Default)]
struct Negotiation {
    /// The format of the region the seat sits in (none before the first attach).
    stream: Option<FrameFormat>,
    /// What downstream agreed to, for that format.
    negotiated: Option<(FrameFormat, gst_video::VideoInfo)>,
}

/// The streaming thread's own state.
#[derive(Debug)]
struct Streaming {
    name: StreamName,
    settings: Settings,
    reader: Option<Reader>,
    /// The next buffer follows a gap (a restart or a lost producer).
    discont: bool,
    corrupt_in_a_row: u32,
}

/// What one look at the stream gave.
enum Step {
    Frame(gst::Buffer),
    Idle,
    /// The region gives no more frames: the producer stopped (`true`) or was lost.
    Lost {
        stopped: bool,
    },
}

#[derive(Debug, Default)]
pub struct FramepipeSrc {
    settings: Mutex<Settings>,
    negotiation: Mutex<Negotiation>,
    streaming: Mutex<Option<Streaming>>,
    stats: Mutex<Stats>,
    /// The latency last reported (apart from `streaming`, which the streaming thread
    /// holds while it waits).
    latency: Mutex<gst::ClockTime>,
    flushing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked; the data is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for FramepipeSrc {
    const NAME: &'static str = "GstFramepipeSrc";
    type Type = super::FramepipeSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for FramepipeSrc {
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
            "wait" => settings.wait_ms = value.get().expect("type checked upstream"),
            "strategy" => settings.strategy = value.get().expect("type checked upstream"),
            "wait-next-producer" => {
                settings.wait_next_producer = value.get().expect("type checked upstream");
            }
            "every-frame" => settings.every_frame = value.get().expect("type checked upstream"),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => {
                let stats = *lock(&self.stats);
                gst::Structure::builder("application/x-framepipesrc-stats")
                    .field("frames", stats.frames)
                    .field("skipped", stats.skipped)
                    .field("reopens", stats.reopens)
                    .field("delivery-lost-at", stats.lost_at.unwrap_or(0))
                    .build()
                    .to_value()
            }
            name => {
                let settings = lock(&self.settings);
                match name {
                    "stream" => settings.stream.to_value(),
                    "wait" => settings.wait_ms.to_value(),
                    "strategy" => settings.strategy.to_value(),
                    "wait-next-producer" => settings.wait_next_producer.to_value(),
                    "every-frame" => settings.every_frame.to_value(),
                    // GObject only asks for the properties declared above.
                    other => {
                        gst::warning!(CAT, imp = self, "unknown property {other}");
                        None::<String>.to_value()
                    }
                }
            }
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for FramepipeSrc {}

impl ElementImpl for FramepipeSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "framepipe source",
                "Source/Video",
                "Reads a framepipe stream (raw frames in shared memory on this machine) as \
                 a live source; follows producer restarts and format changes",
                "framepipe developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps::src_template_caps(),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for FramepipeSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        // NAME, or USER/NAME for another user's stream shared with a group of ours.
        let name = settings
            .stream
            .parse::<StreamName>()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("stream: {e}")))?;
        *lock(&self.stats) = Stats::default();
        *lock(&self.negotiation) = Negotiation::default();
        *lock(&self.streaming) = Some(Streaming {
            name,
            settings,
            reader: None,
            discont: false,
            corrupt_in_a_row: 0,
        });
        *lock(&self.latency) = gst::ClockTime::ZERO;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the reader gives the seat back.
        *lock(&self.streaming) = None;
        *lock(&self.negotiation) = Negotiation::default();
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let stream = lock(&self.negotiation).stream;
        let caps = match stream {
            Some(format) => caps::caps_for(format),
            None => caps::src_template_caps(),
        };
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        // Before the seat is attached the stream's format is unknown: `create` negotiates
        // once it is, so downstream never sees caps for a format that is not there.
        if lock(&self.negotiation).stream.is_none() {
            return Ok(());
        }
        self.parent_negotiate()
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let (info, format) =
            caps::parse(caps).map_err(|e| gst::loggable_error!(CAT, "caps {caps} refused: {e}"))?;
        let mut negotiation = lock(&self.negotiation);
        if negotiation.stream != Some(format) {
            return Err(gst::loggable_error!(
                CAT,
                "caps {caps} do not match the stream's format"
            ));
        }
        gst::info!(CAT, imp = self, "negotiated {caps}");
        negotiation.negotiated = Some((format, info));
        Ok(())
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let latency = *lock(&self.latency);
            gst::debug!(CAT, imp = self, "latency {latency}");
            q.set(true, latency, Some(latency));
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        // Buffers come from a video pool of whole frames, reused frame after frame: a fresh
        // allocation per frame would fault in (and zero) every page of it each time.
        let (caps, _) = query.get_owned();
        let Some(caps) = caps else {
            // The deferred first negotiation (no stream yet): nothing to allocate for.
            return self.parent_decide_allocation(query);
        };
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|_| gst::loggable_error!(CAT, "allocation for caps {caps}"))?;
        let size = u32::try_from(info.size())
            .map_err(|_| gst::loggable_error!(CAT, "frames of {} bytes", info.size()))?;
        let pools = query.allocation_pools();
        match pools.first() {
            Some((Some(pool), pool_size, min, max)) => {
                query.set_nth_allocation_pool(0, Some(pool), size.max(*pool_size), *min, *max);
            }
            _ => {
                let pool = gst_video::VideoBufferPool::new();
                if pools.is_empty() {
                    query.add_allocation_pool(Some(&pool), size, 0, 0);
                } else {
                    query.set_nth_allocation_pool(0, Some(&pool), size, 0, 0);
                }
            }
        }
        self.parent_decide_allocation(query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::Relaxed);
        Ok(())
    }
}

impl PushSrcImpl for FramepipeSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let mut guard = lock(&self.streaming);
        let Some(streaming) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        loop {
            self.check_flushing()?;
            if streaming.reader.is_none() {
                let reader = self.attach(streaming)?;
                self.stream_format(reader.format());
                streaming.reader = Some(reader);
            }
            let Some(reader) = streaming.reader.as_mut() else {
                continue;
            };
            let format = reader.format();
            let negotiated = lock(&self.negotiation).negotiated.clone();
            let info = match negotiated {
                Some((negotiated, info)) if negotiated == format => info,
                _ => {
                    self.stream_format(format);
                    if !self.obj().negotiate() {
                        self.check_flushing()?;
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ("downstream refuses the stream's format {format}")
                        );
                        return Err(gst::FlowError::NotNegotiated);
                    }
                    continue;
                }
            };
            match self.next(reader, format, &info, &mut streaming.corrupt_in_a_row)? {
                Step::Frame(mut buffer) => {
                    if std::mem::take(&mut streaming.discont) {
                        buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
                    }
                    return Ok(CreateSuccess::NewBuffer(buffer));
                }
                Step::Idle => continue,
                Step::Lost { stopped } => {
                    if stopped && !streaming.settings.wait_next_producer {
                        gst::info!(CAT, imp = self, "the producer stopped: EOS");
                        return Err(gst::FlowError::Eos);
                    }
                    if !self.reopen(streaming)? {
                        gst::info!(CAT, imp = self, "no producer came back: EOS");
                        return Err(gst::FlowError::Eos);
                    }
                    streaming.discont = true;
                }
            }
        }
    }
}

impl FramepipeSrc {
    fn check_flushing(&self) -> Result<(), gst::FlowError> {
        if self.flushing.load(Ordering::Relaxed) {
            Err(gst::FlowError::Flushing)
        } else {
            Ok(())
        }
    }

    /// Records the format of the region the seat sits in (what `caps` offers).
    fn stream_format(&self, format: FrameFormat) {
        let mut negotiation = lock(&self.negotiation);
        if negotiation.stream != Some(format) {
            gst::info!(CAT, imp = self, "stream format {format}");
            negotiation.stream = Some(format);
        }
    }

    fn options(settings: &Settings, wait: Duration) -> ReaderOptions {
        ReaderOptions {
            wait,
            strategy: settings.strategy.wait_strategy(),
            delivery: if settings.every_frame {
                Delivery::EveryFrame
            } else {
                Delivery::Newest
            },
        }
    }

    /// The deadline of a wait for a producer: `wait`, or none with `wait-next-producer`.
    fn wait_deadline(settings: &Settings) -> Option<Deadline> {
        (!settings.wait_next_producer)
            .then(|| Deadline::after(Duration::from_millis(settings.wait_ms.into())))
    }

    /// Attaches a seat, in slices (so `unlock` ends the wait), until the deadline.
    fn attach(&self, streaming: &Streaming) -> Result<Reader, gst::FlowError> {
        let deadline = Self::wait_deadline(&streaming.settings);
        loop {
            self.check_flushing()?;
            let slice = deadline.map_or(SLICE, |d| d.remaining().min(SLICE));
            let options = Self::options(&streaming.settings, slice);
            match Reader::open(&streaming.name, options) {
                Ok(reader) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "attached to stream {} ({}, seat {} of {}, epoch {}, producer pid {})",
                        streaming.name,
                        reader.format(),
                        reader.seat(),
                        reader.seats(),
                        reader.epoch(),
                        reader.producer_pid()
                    );
                    return Ok(reader);
                }
                Err(e) if e.is_transient() && !deadline.is_some_and(|d| d.expired()) => {}
                Err(e) => return Err(self.open_failed(&streaming.name, &e)),
            }
        }
    }

    /// Moves the seat to the stream's next region, in slices, until the deadline. `false`
    /// when none came in time.
    fn reopen(&self, streaming: &mut Streaming) -> Result<bool, gst::FlowError> {
        let deadline = Self::wait_deadline(&streaming.settings);
        let Some(reader) = streaming.reader.as_mut() else {
            return Ok(false);
        };
        gst::info!(CAT, imp = self, "following stream {}", streaming.name);
        loop {
            self.check_flushing()?;
            let slice = deadline.map_or(SLICE, |d| d.remaining().min(SLICE));
            match reader.reopen(slice) {
                Ok(()) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "reattached: {}, seat {}, epoch {}",
                        reader.format(),
                        reader.seat(),
                        reader.epoch()
                    );
                    lock(&self.stats).reopens += 1;
                    self.stream_format(reader.format());
                    return Ok(true);
                }
                Err(e) if e.is_transient() => {
                    if deadline.is_some_and(|d| d.expired()) {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(self.open_failed(&streaming.name, &e)),
            }
        }
    }

    fn open_failed(&self, name: &StreamName, e: &OpenError) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::ResourceError::OpenRead,
            ("cannot attach to stream {name}: {e}")
        );
        gst::FlowError::Error
    }

    /// Waits one slice for a frame and copies it into a new buffer.
    fn next(
        &self,
        reader: &mut Reader,
        format: FrameFormat,
        info: &gst_video::VideoInfo,
        corrupt_in_a_row: &mut u32,
    ) -> Result<Step, gst::FlowError> {
        let frame = match reader.wait_frame(SLICE) {
            Ok(frame) => frame,
            Err(e) => return self.no_frame(e, corrupt_in_a_row),
        };
        *corrupt_in_a_row = 0;
        let pooled = self
            .obj()
            .buffer_pool()
            .and_then(|pool| pool.acquire_buffer(None).ok())
            .filter(|buffer| buffer.size() >= info.size());
        let fresh = || gst::Buffer::with_size(info.size());
        let mut buffer = pooled.map_or_else(fresh, Ok).map_err(|_| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::NoSpaceLeft,
                ("cannot allocate a buffer of {} bytes", info.size())
            );
            gst::FlowError::Error
        })?;
        {
            let buffer = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            let mut video = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info)
                .map_err(|_| gst::FlowError::Error)?;
            caps::copy_from_packed(&frame, format, &mut video).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{e}"));
                gst::FlowError::Error
            })?;
        }
        let frame_info = frame.info();
        // The slot is released here, before the buffer goes downstream.
        drop(frame);
        let lost = {
            let mut stats = lock(&self.stats);
            stats.frames += 1;
            stats.skipped += frame_info.skipped;
            let every = lock(&self.settings).every_frame;
            let lost = every && (frame_info.skipped > 0 || frame_info.demoted);
            let first = lost && stats.lost_at.is_none();
            if first {
                stats.lost_at = Some(frame_info.seq - frame_info.skipped);
            }
            first.then_some(frame_info.seq - frame_info.skipped)
        };
        if let Some(seq) = lost {
            // Not an error: the pipeline goes on with the newest frames, as the producer
            // decided; the application learns of it on the bus.
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                ("every-frame delivery lost at seq {seq}: the producer's stall timeout dropped this seat back to newest-frame")
            );
        }
        self.stamp(buffer.get_mut().ok_or(gst::FlowError::Error)?, &frame_info);
        Ok(Step::Frame(buffer))
    }

    /// What a wait without a frame means. Written as a chain rather than a `match` so a
    /// reason the library adds later (an owned hold's "frame in use") lands in the last
    /// branch, an element error, instead of breaking the build.
    fn no_frame(&self, e: WaitError, corrupt_in_a_row: &mut u32) -> Result<Step, gst::FlowError> {
        if matches!(e, WaitError::Timeout) {
            return Ok(Step::Idle);
        }
        if matches!(e, WaitError::Stopped) {
            return Ok(Step::Lost { stopped: true });
        }
        if matches!(e, WaitError::ProducerGone | WaitError::Replaced) {
            return Ok(Step::Lost { stopped: false });
        }
        if let WaitError::Corrupt(corrupt) = e {
            *corrupt_in_a_row += 1;
            gst::warning!(CAT, imp = self, "corrupt region: {corrupt}");
            if *corrupt_in_a_row >= MAX_CONSECUTIVE_CORRUPT {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Decode,
                    ("the stream's region stays corrupt: {corrupt}")
                );
                return Err(gst::FlowError::Error);
            }
            // Garbage in `latest` or a slot: a fresh seat and seq may get past it.
            return Ok(Step::Lost { stopped: false });
        }
        gst::element_imp_error!(self, gst::ResourceError::Read, ("cannot read a frame: {e}"));
        Err(gst::FlowError::Error)
    }
}

//! `framepipesrc`'s timestamps: PTS from the frame's capture time, the inverse of
//! framepipesink's mapping, and the latency it reports.

use frame_vocab::monotonic_ns;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use shm_frames::FrameInfo;

use super::{CAT, FramepipeSrc, lock};

/// The latency is reported again when the measured one grows by more than this.
const LATENCY_STEP: gst::ClockTime = gst::ClockTime::from_mseconds(1);

/// The largest latency ever reported (a stalled producer is not a latency).
const MAX_LATENCY: gst::ClockTime = gst::ClockTime::from_seconds(1);

impl FramepipeSrc {
    /// Stamps PTS with the inverse of framepipesink's mapping:
    /// `running_time = (clock_now − base_time) − (mono_now − capture_ns)`, unless
    /// `do-timestamp` asks BaseSrc to stamp the push time. Also measures the latency.
    pub(super) fn stamp(&self, buffer: &mut gst::BufferRef, info: &FrameInfo) {
        let obj = self.obj();
        let age_ns = monotonic_ns().saturating_sub(info.capture_ns);
        buffer.set_offset(info.seq);
        if obj.does_timestamp() {
            return;
        }
        self.measure_latency(gst::ClockTime::from_nseconds(age_ns));
        let (Some(clock), Some(base_time)) = (obj.clock(), obj.base_time()) else {
            return;
        };
        let Some(clock_now) = clock.time() else {
            return;
        };
        let running = i128::from(clock_now.nseconds())
            - i128::from(base_time.nseconds())
            - i128::from(age_ns);
        let pts = u64::try_from(running.max(0)).unwrap_or(0);
        buffer.set_pts(gst::ClockTime::from_nseconds(pts));
    }

    /// Keeps the reported latency at the largest capture-to-push delay seen (capped), and
    /// tells the pipeline when it grew.
    fn measure_latency(&self, age: gst::ClockTime) {
        let age = age.min(MAX_LATENCY);
        let grew = {
            let mut latency = lock(&self.latency);
            let grew = age > *latency + LATENCY_STEP;
            if grew {
                *latency = age;
            }
            grew
        };
        if grew {
            gst::debug!(CAT, imp = self, "latency now {age}");
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
    }
}

//! The buffer pool `framepipesink` offers upstream: its buffers are the stream's slots, so
//! upstream renders each frame straight into shared memory and the sink publishes it
//! without a copy (as `shmsink`'s allocator does for its area).
//!
//! - Each acquire takes the slot the writer set aside after its last publish
//!   (`shm_frames::Lender`): a fresh buffer wrapping it, never a recycled one, since a slot
//!   once published is the frame consumers read and must not be written again.
//! - The writer lends at most `slot_count − seats − 1` slots at once, so every seat may
//!   hold a frame and the writer still has a slot of its own.
//! - When no slot is to spare (a consumer holds one, the previous buffer is still alive,
//!   the caps are not laid out as framepipe packs them), the buffer comes from ordinary
//!   memory, recycled as any pool's, and the sink copies it: upstream never waits.

use std::sync::{Arc, Mutex};

use frame_vocab::FrameFormat;
use gst::glib;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use shm_frames::{Lender, ReadySlot, Writer};

use crate::caps;

/// The current region's lender, shared by the sink (which replaces it when the region is
/// replaced) and the pools it offered.
pub(crate) type LenderCell = Arc<Mutex<Option<Lender>>>;

glib::wrapper! {
    /// A pool whose buffers are framepipe slots where one is to spare.
    pub struct SlotPool(ObjectSubclass<imp::SlotPool>)
        @extends gst::BufferPool, gst::Object;
}

impl SlotPool {
    /// A pool lending from whatever region `lender` names when a buffer is acquired.
    pub(crate) fn new(lender: LenderCell) -> SlotPool {
        let pool: SlotPool = glib::Object::new();
        let _ = pool.imp().lender.set(lender);
        pool
    }
}

/// The lent slot of `writer`'s region that `frame` was rendered into, to publish in place:
/// `None` unless the buffer is one whole memory laid out as framepipe packs `format` (an
/// element may have attached a `VideoMeta` of its own) and that memory is a lent slot.
pub(super) fn adopt<'w>(
    writer: &'w mut Writer,
    frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    format: FrameFormat,
) -> Option<ReadySlot<'w>> {
    if frame.buffer().n_memory() != 1 {
        return None;
    }
    let start = caps::packed_start(frame, format)?;
    writer.adopt_lent(start, frame.buffer().size())
}

mod imp {
    use std::sync::{Mutex, OnceLock};

    use frame_vocab::FrameFormat;
    use gst::glib;
    use gst::prelude::*;
    use gst::subclass::prelude::*;
    use shm_frames::LentSlot;

    use super::super::lock;
    use super::LenderCell;
    use crate::caps;

    #[derive(Debug, Default)]
    pub struct SlotPool {
        /// Set once, right after construction.
        pub(super) lender: OnceLock<LenderCell>,
        /// The frame format the configured caps pack into, when a slot can serve as a
        /// buffer of them as it is (`caps::layout_is_packed`); `None`: never lend.
        format: Mutex<Option<FrameFormat>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for SlotPool {
        const NAME: &'static str = "GstFramepipeSlotPool";
        type Type = super::SlotPool;
        type ParentType = gst::BufferPool;
    }

    impl ObjectImpl for SlotPool {}
    impl GstObjectImpl for SlotPool {}

    impl BufferPoolImpl for SlotPool {
        fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
            let Some((caps, size, min, _max)) = config.params() else {
                return false;
            };
            let format = caps
                .as_ref()
                .and_then(|caps| caps::parse(caps).ok())
                .filter(|(info, format)| {
                    caps::layout_is_packed(info, *format)
                        && usize::try_from(size).ok() == Some(format.frame_bytes())
                })
                .map(|(_, format)| format);
            // No upper bound: at the bound, the ordinary pool would make upstream wait.
            config.set_params(caps.as_ref(), size, min, 0);
            *lock(&self.format) = format;
            self.parent_set_config(config)
        }

        fn acquire_buffer(
            &self,
            params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            if !self.obj().is_active() {
                return self.parent_acquire_buffer(params);
            }
            let Some(lent) = self.lend() else {
                return self.parent_acquire_buffer(params);
            };
            gst::trace!(super::super::CAT, imp = self, "lent slot {}", lent.slot());
            let mut buffer = gst::Buffer::from_mut_slice(lent);
            // Marks the memory as not the pool's: `release_buffer` drops the buffer (which
            // ends the lend) instead of recycling a slot that may have been published.
            buffer
                .get_mut()
                .ok_or(gst::FlowError::Error)?
                .set_flags(gst::BufferFlags::TAG_MEMORY);
            Ok(buffer)
        }

        fn release_buffer(&self, buffer: gst::Buffer) {
            if buffer.flags().contains(gst::BufferFlags::TAG_MEMORY) {
                // A lent slot (or memory upstream swapped in): never recycled.
                drop(buffer);
                return;
            }
            self.parent_release_buffer(buffer);
        }
    }

    impl SlotPool {
        fn lend(&self) -> Option<LentSlot> {
            let format = (*lock(&self.format))?;
            let lender = lock(self.lender.get()?).clone()?;
            if lender.format() != format {
                return None; // The region moved on to other caps; upstream follows soon.
            }
            lender.lend()
        }
    }
}

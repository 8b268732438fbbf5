//! `framepipesrc`: a framepipe stream becomes a live GStreamer source.
//!
//! Each frame is copied out of its slot into a new buffer and the slot released at once, so
//! downstream may keep buffers as long as it likes without stalling the stream.
#![forbid(unsafe_code)]

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `framepipesrc` element.
    pub struct FramepipeSrc(ObjectSubclass<imp::FramepipeSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Registers `framepipesrc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "framepipesrc",
        gst::Rank::NONE,
        FramepipeSrc::static_type(),
    )
}

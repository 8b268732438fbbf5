//! `framepipesink`: a GStreamer pipeline becomes the producer of a framepipe stream.
//!
//! Upstream renders into the slots themselves where its buffers come from the element's
//! slot pool (published in place); other buffers are copied once into a free slot. The
//! pipeline decides the format, so framepipe's `SetFps`, `SetFormat` and `SetPattern` commands are refused.
#![forbid(unsafe_code)]

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `framepipesink` element.
    pub struct FramepipeSink(ObjectSubclass<imp::FramepipeSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

/// Registers `framepipesink` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "framepipesink",
        gst::Rank::NONE,
        FramepipeSink::static_type(),
    )
}

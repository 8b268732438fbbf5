//! The GStreamer plugin `framepipe`: [`framepipesink`] makes a pipeline a framepipe
//! producer, [`framepipesrc`] makes a framepipe stream a live GStreamer source.
//!
//! The sink publishes buffers from its slot pool in place and copies others once; the
//! source copies each frame out of its slot once: a consumer's slot is never held while
//! GStreamer holds a buffer. See DESIGN.md's "Python and GStreamer" section.
//!
//! `unsafe` is denied crate-wide and allowed only where `gst::plugin_define!` expands (the
//! C entry points GStreamer loads); the element modules forbid it outright.
#![deny(unsafe_code)]

use gst::glib;

pub mod caps;
pub mod framepipesink;
pub mod framepipesrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    framepipesink::register(plugin)?;
    framepipesrc::register(plugin)?;
    Ok(())
}

#[allow(unsafe_code)]
mod desc {
    use super::plugin_init;

    gst::plugin_define!(
        framepipe,
        env!("CARGO_PKG_DESCRIPTION"),
        plugin_init,
        env!("CARGO_PKG_VERSION"),
        "MIT/X11",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_REPOSITORY")
    );
}

/// Registers the plugin in this process without loading a shared object (for tests and
/// applications that link the crate).
pub fn plugin_register_static() -> Result<(), glib::BoolError> {
    desc::plugin_desc::plugin_register_static()
}

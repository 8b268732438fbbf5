//! `consumer`: viewer, headless stats, recording and the demo.
#![forbid(unsafe_code)]

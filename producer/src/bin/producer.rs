//! The `producer` binary.
#![forbid(unsafe_code)]

fn main() {}

//! The `consumer` binary.
#![forbid(unsafe_code)]

fn main() {}

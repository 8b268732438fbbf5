//! Shared helpers for framepipe's criterion benchmarks.
#![forbid(unsafe_code)]

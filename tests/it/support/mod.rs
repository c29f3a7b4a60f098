//! Shared test support for the `it` integration tests: the spawned plugin, a counting stub
//! upstream, a real Prometheus, and an Arrow frame reader.
#![allow(dead_code)]

pub mod arrow;
pub mod plugin;
pub mod prometheus;
pub mod shared;
pub mod stub;

//! Fault matrix: the spawned plugin against hostile upstreams (raw TCP servers on 127.0.0.1
//! written byte by byte) and hostile Grafana input. Every case checks the status,
//! errorSource and message it must produce, is followed by a normal query on the same
//! process that must answer 200, and checks that none of four unique secrets shows up in
//! stderr, errors, frames, `executedQueryString` or the metrics. Memory is bounded (VmHWM of
//! the plugin), deadlines are measured, and a cancelled request must reach the upstream.
//! See docs/faults.md for the matrix.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../it/support/mod.rs"]
mod support;

mod grafana;
mod gzip;
mod harness;
mod huge;
mod raw;
mod upstream;

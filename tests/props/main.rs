//! Property tests (proptest) of the parts of RestBridge that take outside input:
//!
//! * [`url_render`]: params rendered into a rule URL cannot leave their path segment or query
//!   value, nor change the scheme, host or port;
//! * [`time_parse`]: epoch integers/decimals and RFC 3339 texts round-trip exactly to epoch
//!   nanoseconds, and `auto` agrees with the explicit unit its magnitude rule picks;
//! * [`numbers`]: `to_f64` / `to_i64` against Rust's own parsing;
//! * [`convert_docs`]: converting arbitrary JSON documents never panics, every frame encodes to
//!   Arrow, and the DOM-free fast path gives the same outcome;
//! * [`regressions`]: one test per crash the fuzz targets (`fuzz/`) found.
//!
//! Case counts stay at proptest's default (256) or below so `cargo test` stays fast; set
//! `PROPTEST_CASES` for a longer run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod convert_docs;
mod numbers;
mod regressions;
mod time_parse;
mod url_render;

/// `cases` cases (or `PROPTEST_CASES` when set), no failure-persistence files: a failure
/// found is turned into a test in [`regressions`] instead.
pub fn config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

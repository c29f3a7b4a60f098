//! dataplane conformance tests: are our frames alert-ready?
//!
//! * `sse` — a server-side-expressions (alerting) shape classifier written from
//!   `../shared/protocol.md` §4.1/§4.2/§9 item 27 and the dataplane contract summary.
//! * `frame_json` — reads the SDK's frame JSON (protocol.md §3.8) into decoded frames.
//! * `examples` — the classifier against Grafana's dataplane example files (+ derived
//!   invalid variants).
//! * `ours` — our frames (rule + document → convert → Arrow → decode) through the classifier,
//!   with a printed `KNOWN_GAPS` list. Results are summarised in `docs/alerting.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../it/support/mod.rs"]
mod support;

mod examples;
mod frame_json;
mod ours;
mod sse;

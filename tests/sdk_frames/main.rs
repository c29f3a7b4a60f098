//! sdk_frames: our Arrow frame encoder against the Grafana Go SDK's own golden frames
//! (`../shared/conformance/sdk-go-frames`, protocol.md §3). Results and every difference found
//! are written up in docs/conformance-sdk-frames.md.
//!
//! * `all_types`: (1) `all_types.golden.arrow` read with arrow-rs and pinned; (2) the same frame
//!   built by hand with our encoder, compared field by field.
//! * `txt_goldens`: (3) every `FRAME=` of the `.txt` goldens re-encoded by us and compared;
//!   prints the `sdk goldens: …` summary line.
//! * `invariants`: (4) protocol invariants of everything our encoder writes.
//! * `golden` (permissive reader, rebuild, comparison) and `ipc` (container facts) are helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../it/support/mod.rs"]
mod support;

mod all_types;
mod golden;
mod invariants;
mod ipc;
mod txt_goldens;

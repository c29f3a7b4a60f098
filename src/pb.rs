//! Generated protobuf and gRPC code (from `proto/` by `build.rs`). This is the only module
//! where lints are relaxed; nothing outside `server` should import it.

#![allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    unreachable_pub
)]

/// Grafana's plugin protocol v2 (protocol.md §2).
pub mod pluginv2 {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/pluginv2.rs"));
}

/// go-plugin's internal services (protocol.md §1.6).
pub mod goplugin {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
}

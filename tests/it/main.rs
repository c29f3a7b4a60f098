//! RestBridge integration tests: the real binary spawned as Grafana spawns it, real HTTP
//! upstreams on 127.0.0.1 (stubs and a real Prometheus), real Arrow decoding.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cache;
mod cli;
mod grpc_writes;
mod jsonpath_cts;
mod plugin_process;
mod prometheus_e2e;
mod proxy;
mod query_errors;
mod redis_tier;
mod resources;
mod support;

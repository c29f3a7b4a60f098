//! # RestBridge
//!
//! A Grafana backend datasource plugin that turns any REST/JSON API into typed data frames
//! for dashboards and alerting. Data flow of one query:
//!
//! ```text
//! pb::QueryDataRequest
//!  └ server         wire → domain (DataSourceSettings, DataQuery), per-refId fan-out
//!    └ instance     Instances::get(uid, lastUpdatedMS) → compiled Instance (rules, client, cache)
//!      └ pipeline   rule lookup → params → render (template) → fetch (cache) → JSON
//!        └ convert  JSONPath extraction (jsonpath) → typed columns (timeparse) → shaped frames
//!          └ frame  Arrow IPC file per frame with Grafana metadata
//! ```
//!
//! The same pipeline serves the command-line tool (`cli`) and the built-in demo (`demo`).

pub mod auth;
pub mod cli;
pub mod codec;
pub mod conn;
pub mod convert;
pub mod convert_fast;
pub mod demo;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod grpc_data;
pub mod handshake;
pub mod heap;
pub mod instance;
pub mod jsonpath;
pub mod logging;
pub mod metrics;
pub mod pb;
pub mod pipeline;
pub mod plugin;
pub mod provisioning;
pub mod redis_tier;
pub mod render;
pub mod resources;
pub mod rule;
pub mod server;
pub mod settings;
pub mod template;
pub mod timeparse;
pub mod tls;

//! http_auth: authentication, limits and safety features proven end to end against real
//! servers on 127.0.0.1 (httpbin, Prometheus with basic auth, a mutual-TLS Python server) and
//! programmable stubs, always through the spawned plugin binary. Missing servers make a test
//! print `skipping: …` unless `RESTBRIDGE_REQUIRE_SERVERS` is set (CI); `install.sh` beside
//! this file installs them. See docs/http-auth.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../it/support/mod.rs"]
mod support;

mod common;
mod httpbin;
mod login;
mod oauth2;
mod passthru;
mod prometheus_auth;
mod rate_limit;
mod secrets;
mod servers;
mod tls;

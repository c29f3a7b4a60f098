//! http_paging: pagination (page, offset, cursor, link), bearer tokens and the login flow
//! against real servers on 127.0.0.1 (json-server 0.17.4, datasette 1.0a41 and 0.65.5,
//! etcd 3.4), plus programmable stubs where a real server cannot show a case. See
//! `docs/pagination.md` for what each test proves and `install.sh` for the installs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../it/support/mod.rs"]
mod support;

mod common;
mod datasette;
mod etcd;
mod json_server;
mod servers;
mod stubs;

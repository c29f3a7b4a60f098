//! Shared test support for the `it` integration tests (real upstream servers, fixtures).

pub mod prometheus;

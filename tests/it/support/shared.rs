//! Access to `../shared` (conformance data and fixtures beside the checkout). A fresh clone
//! has no `../shared`: tests then skip with a printed notice, unless
//! `RESTBRIDGE_REQUIRE_SHARED` is set (as `.ci/run` does), which turns the skip into a failure.

use std::path::PathBuf;

/// `../shared/<rel>` when it exists; otherwise prints `skipping: …` and returns `None`.
///
/// # Panics
/// When the path is missing and `RESTBRIDGE_REQUIRE_SHARED` is set.
pub fn path(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("RESTBRIDGE_REQUIRE_SHARED").is_none(),
        "../shared/{rel} not found, and RESTBRIDGE_REQUIRE_SHARED is set"
    );
    println!("skipping: ../shared/{rel} not found (conformance data lives outside the repo)");
    None
}

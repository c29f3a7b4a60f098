//! RFC 9535 JSONPath Compliance Test Suite runner for `restbridge::jsonpath`.
//!
//! The suite (`cts.json`, see `shared/conformance/jsonpath-cts/SOURCES.md`) lives
//! outside the repository, beside the checkout; when it is absent the test says so
//! and passes.

use restbridge::jsonpath::{JsonPath, PathError};
use serde_json::Value;

/// What happened to one CTS test.
enum Outcome {
    Passed,
    /// A valid selector that our guard refuses (too long or too deep).
    RejectedByGuard(String),
    Failed(String),
}

/// Runs one CTS test case.
fn run_case(test: &Value) -> Outcome {
    let selector = test["selector"].as_str().unwrap_or_default();
    let compiled = JsonPath::compile(selector);

    if test.get("invalid_selector") == Some(&Value::Bool(true)) {
        return match compiled {
            Err(_) => Outcome::Passed,
            Ok(_) => Outcome::Failed("invalid selector was accepted".to_owned()),
        };
    }

    let path = match compiled {
        Ok(path) => path,
        Err(err @ (PathError::TooLong { .. } | PathError::TooDeep { .. })) => {
            return Outcome::RejectedByGuard(err.to_string());
        }
        Err(err) => return Outcome::Failed(format!("valid selector refused: {err}")),
    };

    let Some(document) = test.get("document") else {
        return Outcome::Failed("test has neither invalid_selector nor document".to_owned());
    };
    let got = path.select(document);

    // `result` is the one expected nodelist; `results` lists the acceptable orders.
    let expected: Vec<&Vec<Value>> = match (test.get("result"), test.get("results")) {
        (Some(Value::Array(one)), _) => vec![one],
        (_, Some(Value::Array(many))) => many.iter().filter_map(Value::as_array).collect(),
        _ => return Outcome::Failed("test has no result/results array".to_owned()),
    };
    let matches =
        |want: &&Vec<Value>| want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| w == *g);
    if expected.iter().any(matches) {
        Outcome::Passed
    } else {
        Outcome::Failed(format!(
            "got {}, expected {}",
            serde_json::to_string(&got).unwrap_or_default(),
            serde_json::to_string(&expected).unwrap_or_default()
        ))
    }
}

#[test]
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn jsonpath_cts() {
    let Some(file) = crate::support::shared::path("conformance/jsonpath-cts/cts.json") else {
        return;
    };
    let text = std::fs::read_to_string(&file).expect("read cts.json");
    let suite: Value = serde_json::from_str(&text).expect("cts.json is JSON");
    let tests = suite["tests"]
        .as_array()
        .expect("cts.json has a tests array");

    let mut passed = 0usize;
    let mut rejected = Vec::new();
    let mut failed = Vec::new();
    for test in tests {
        let name = test["name"].as_str().unwrap_or("<unnamed>");
        let selector = test["selector"].as_str().unwrap_or_default();
        match run_case(test) {
            Outcome::Passed => passed += 1,
            Outcome::RejectedByGuard(why) => rejected.push(format!("{name} `{selector}`: {why}")),
            Outcome::Failed(why) => failed.push(format!("{name} `{selector}`: {why}")),
        }
    }

    for line in &rejected {
        println!("rejected by guard: {line}");
    }
    for line in &failed {
        println!("FAILED: {line}");
    }
    println!(
        "jsonpath cts: {passed} passed, {} rejected by guard, {} failed of {}",
        rejected.len(),
        failed.len(),
        tests.len()
    );
    assert!(!tests.is_empty(), "cts.json has no tests");
    assert!(
        failed.is_empty(),
        "{} CTS test(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

//! JSONPath compile + evaluation: any query either is refused or evaluates without panicking
//! on any document, and restbridge's own evaluator for plain paths selects exactly the nodes
//! the RFC 9535 engine selects (same nodes, same order: compared by address).
//!
//! Input: `QUERY` + `\n` + `DOCUMENT` (JSON). Without a newline the whole input is the query;
//! a document that is not JSON is replaced by a fixed one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use restbridge::jsonpath::JsonPath;
use serde_json::Value;

const FALLBACK_DOC: &str = r#"{"data":[{"t":1,"v":2.5,"name":"a","tags":{"k":"v"}},
  {"t":2,"v":null,"name":"b","x":[1,[2,[3]]]}],"a":{"b":{"c":[0,1,2,3]}},"":{"":1},
  "with space":true,"n":-0.0,"e":1e300,"s":"\u00e9"}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, doc_text) = text.split_once('\n').unwrap_or((text, FALLBACK_DOC));
    let doc: Value = serde_json::from_str(doc_text)
        .or_else(|_| serde_json::from_str(FALLBACK_DOC))
        .expect("fallback document is JSON");
    let Ok(path) = JsonPath::compile(query) else {
        return;
    };
    assert_eq!(path.as_str(), query);
    let ours = path.select(&doc);
    let engine = jsonpath_rfc9535::JsonPath::parse(query)
        .expect("restbridge compiled a query the engine refuses")
        .query_values(&doc);
    let same =
        ours.len() == engine.len() && ours.iter().zip(&engine).all(|(a, b)| std::ptr::eq(*a, *b));
    assert!(
        same,
        "{query:?}: restbridge selected {ours:?}, the engine {engine:?}"
    );
    if path.is_singular() {
        assert!(
            ours.len() <= 1,
            "singular {query:?} selected {}",
            ours.len()
        );
    }
    match path.select_one(&doc) {
        Ok(None) => assert!(ours.is_empty()),
        Ok(Some(v)) => assert!(ours.len() == 1 && std::ptr::eq(v, ours[0])),
        Err(n) => assert_eq!(n, ours.len()),
    }
});

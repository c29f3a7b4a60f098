//! Property (d): converting arbitrary JSON documents never panics, every frame it gives
//! encodes to an Arrow IPC file that reads back, and the DOM-free fast path
//! (`convert_fast::try_convert`) gives the same outcome as the DOM path.

use std::sync::OnceLock;

use proptest::prelude::*;
use restbridge::convert::convert;
use restbridge::convert_fast::{try_convert, FastError};
use restbridge::rule::{compile_standalone, Rule};
use serde_json::{json, Map, Number, Value};

/// Rule `response` sections covering the extraction modes, field types and formats.
pub fn responses() -> Vec<Value> {
    vec![
        // Row mode, every field type.
        json!({"rows": "$.data[*]", "fields": [
            {"name": "time", "path": "$.t", "type": "time"},
            {"name": "value", "path": "$.v", "type": "number"},
            {"name": "name", "path": "$.name"},
            {"name": "count", "path": "$.i", "type": "int"},
            {"name": "ok", "path": "$.b", "type": "bool"},
            {"name": "raw", "path": "$.j", "type": "json"}]}),
        // Column mode with parallel arrays.
        json!({"fields": [
            {"name": "time", "path": "$.t[*]", "type": "time", "format": "epoch_ms"},
            {"name": "value", "path": "$.v[*]", "type": "number"}]}),
        // Frame nodes with labels, rows under each.
        json!({"frames": "$.items[*]", "rows": "$.data[*]",
            "labels": {"name": "$.name"},
            "fields": [
                {"name": "time", "path": "$.t", "type": "time"},
                {"name": "value", "path": "$.v", "type": "number"}]}),
        // Table of object members with @key / @index.
        json!({"rows": "$.data.*", "format": "table", "fields": [
            {"name": "key", "path": "@key"},
            {"name": "index", "path": "@index"},
            {"name": "value", "path": "$.v", "type": "int"}]}),
        // Logs.
        json!({"rows": "$.data[*]", "format": "logs", "fields": [
            {"name": "time", "path": "$.t", "type": "time"},
            {"name": "body", "path": "$.name"}]}),
        // Wide time series split by a string field.
        json!({"rows": "$.data[*]", "format": "timeseries-wide", "seriesBy": ["name"],
            "fields": [
                {"name": "time", "path": "$.t", "type": "time"},
                {"name": "name", "path": "$.name"},
                {"name": "value", "path": "$.v", "type": "number"}]}),
        // Numeric, wide and long.
        json!({"rows": "$.data[*]", "format": "numeric-wide", "fields": [
            {"name": "name", "path": "$.name"},
            {"name": "value", "path": "$.v", "type": "number"}]}),
        json!({"rows": "$.data[*]", "format": "numeric", "fields": [
            {"name": "name", "path": "$.name"},
            {"name": "value", "path": "$.v", "type": "number"}]}),
        // labelsFrom, a frame-level time, a zone read from the response.
        json!({"rows": "$.data[*]", "labelsFrom": "$.labels", "fields": [
            {"name": "time", "path": "^.t", "type": "time",
             "timezone": "${__response.$.tz}"},
            {"name": "value", "path": "$.v", "type": "number"}]}),
        // Explicit time formats.
        json!({"rows": "$.data[*]", "fields": [
            {"name": "time", "path": "$.t", "type": "time", "format": "%Y-%m-%d %H:%M",
             "timezone": "Europe/Berlin"},
            {"name": "value", "path": "$.v", "type": "number"}]}),
        // Paths only the engine evaluates: descendants, filters, slices.
        json!({"rows": "$..data[?@.v > 1]", "fields": [
            {"name": "time", "path": "$.t", "type": "time"},
            {"name": "value", "path": "$..v", "type": "number"}]}),
        json!({"fields": [
            {"name": "value", "path": "$.v[1:3]", "type": "number"},
            {"name": "name", "path": "$.data[-1].name"}]}),
    ]
}

pub fn rules() -> &'static Vec<Rule> {
    static CELL: OnceLock<Vec<Rule>> = OnceLock::new();
    CELL.get_or_init(|| {
        responses()
            .into_iter()
            .enumerate()
            .map(|(i, response)| {
                compile_standalone(&json!({
                    "id": format!("r{i}"), "request": {"url": "/x"}, "response": response}))
                .unwrap_or_else(|e| panic!("rule {i}: {e}"))
            })
            .collect()
    })
}

/// Scalars that the conversions treat specially.
fn leaf() -> impl Strategy<Value = Value> {
    let texts = proptest::sample::select(vec![
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.123456789+05:30",
        "2024-03-31T02:30:00",
        "2024-01-01",
        "2024-01-01 12:30",
        "1704067200",
        "1704067200.5",
        "-1.5e3",
        "NaN",
        "+Inf",
        "-Inf",
        "true",
        "no",
        "",
        " ",
        "a\u{0}b",
        "é",
        "Europe/Berlin",
        "Not/AZone",
        "UTC",
        "9223372036854775807",
        "9223372036854775808",
    ]);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0i64..2_000_000_000_000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        texts.prop_map(|s| json!(s)),
        any::<String>().prop_map(Value::String),
    ]
}

/// JSON documents whose keys are mostly the ones the rules' paths name.
pub fn document() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        8 => proptest::sample::select(vec![
            "data", "items", "t", "v", "name", "i", "b", "j", "labels", "tz", "x",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z]{1,3}",
        1 => any::<String>(),
    ];
    leaf().prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Documents shaped like what the rules expect, with arbitrary values in them.
pub fn shaped_document() -> impl Strategy<Value = Value> {
    let row = (leaf(), leaf(), leaf(), leaf(), leaf(), document())
        .prop_map(|(t, v, n, i, b, j)| json!({"t": t, "v": v, "name": n, "i": i, "b": b, "j": j}))
        .boxed();
    let rows = proptest::collection::vec(row, 0..5).boxed();
    let item = (leaf(), rows.clone()).prop_map(|(name, data)| json!({"name": name, "data": data}));
    (
        rows,
        proptest::collection::vec(item, 0..4),
        proptest::collection::vec(leaf(), 0..5),
        proptest::collection::vec(leaf(), 0..5),
        document(),
        leaf(),
        leaf(),
    )
        .prop_map(|(data, items, ts, vs, labels, tz, t)| {
            json!({"data": data, "items": items, "t": ts, "v": vs, "labels": labels, "tz": tz,
                   "x": t})
        })
}

/// The outcome of one path as comparable text (frames in Debug form, as the crate's own
/// fast-path tests compare them).
fn outcome(r: Result<Vec<restbridge::frame::Frame>, String>) -> String {
    match r {
        Ok(frames) => format!("{frames:#?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Converts `doc` with every rule: no panic, every frame encodes and reads back with its row
/// count, and the fast path (when the rule is eligible) agrees with the DOM path.
pub fn check_document(doc: &Value) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(doc).unwrap();
    let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
    for rule in rules() {
        let dom = convert(rule, &reparsed, Some("q".into()));
        if let Ok(frames) = &dom {
            for frame in frames {
                let encoded = frame
                    .encode("A")
                    .map_err(|e| TestCaseError::fail(format!("rule {}: encode: {e}", rule.id)))?;
                let reader =
                    arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(encoded), None)
                        .map_err(|e| TestCaseError::fail(format!("rule {}: read: {e}", rule.id)))?;
                let mut rows = 0;
                for batch in reader {
                    rows += batch
                        .map_err(|e| TestCaseError::fail(format!("rule {}: {e}", rule.id)))?
                        .num_rows();
                }
                prop_assert_eq!(rows, frame.rows(), "rule {}", rule.id);
            }
        }
        if let Some(fast) = try_convert(rule, &bytes, Some("q".into())) {
            let fast = outcome(fast.map_err(|e| match e {
                FastError::NotJson(e) => format!("not json: {e}"),
                FastError::Convert(e) => e.to_string(),
                other => format!("other: {other}"),
            }));
            let dom = outcome(dom.map_err(|e| e.to_string()));
            prop_assert_eq!(
                &fast,
                &dom,
                "rule {}: fast and DOM paths differ on {}",
                rule.id,
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::config(128))]

    #[test]
    fn arbitrary_documents_convert_or_fail_cleanly(doc in document()) {
        check_document(&doc)?;
    }

    #[test]
    fn shaped_documents_convert_or_fail_cleanly(doc in shaped_document()) {
        check_document(&doc)?;
    }
}

//! Unit tests of the JSON → frames conversion (config.md §2, §4, §5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;
use crate::rule::compile_standalone;

fn run(response: Value, doc: Value) -> Result<Vec<Frame>, ConvertError> {
    let rule =
        compile_standalone(&json!({"id": "r", "request": {"url": "/x"}, "response": response}))
            .unwrap();
    convert(&rule, &doc, Some("http://x/y".into()))
}

fn nums(c: &Column) -> Vec<Option<f64>> {
    match c {
        Column::Number(v) => v.clone(),
        other => panic!("not a number column: {other:?}"),
    }
}

fn strs(c: &Column) -> Vec<Option<String>> {
    match c {
        Column::String(v) => v.iter().map(|s| s.map(str::to_owned)).collect(),
        other => panic!("not a string column: {other:?}"),
    }
}

const T0: i64 = 1_704_067_200_000_000_000;

#[test]
fn column_mode_with_parallel_arrays() {
    let frames = run(
        json!({"fields": [
            {"name": "time", "path": "$.hourly.time[*]", "type": "time"},
            {"name": "temp", "path": "$.hourly.t[*]", "type": "number"}]}),
        json!({"hourly": {"time": ["2024-01-01T00:00Z", "2024-01-01T01:00Z"], "t": [1.5, null]}}),
    )
    .unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.frame_type, "timeseries-multi");
    assert_eq!(f.type_version, [0, 1]);
    assert_eq!(f.executed_query.as_deref(), Some("http://x/y"));
    assert_eq!(
        f.fields[0].values,
        Column::Time(vec![Some(T0), Some(T0 + 3_600_000_000_000)])
    );
    assert!(!f.fields[0].nullable);
    assert_eq!(nums(&f.fields[1].values), vec![Some(1.5), None]);
}

#[test]
fn column_mode_length_mismatch_names_both_fields() {
    let err = run(
        json!({"fields": [
            {"name": "a", "path": "$.a[*]", "type": "number"},
            {"name": "b", "path": "$.b[*]", "type": "number"}]}),
        json!({"a": [1, 2, 3], "b": [1]}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("'a' has 3 values but field 'b' has 1"),
        "{err}"
    );
}

#[test]
fn rows_from_an_object_with_key_and_index() {
    let frames = run(
        json!({"rows": "$.areas.*", "fields": [
            {"name": "area", "path": "@key"},
            {"name": "i", "path": "@index", "type": "int"},
            {"name": "price", "path": "$.price", "type": "number"}]}),
        json!({"areas": {"SE3": {"price": 1.25}, "SE4": {"price": "2.5"}}}),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(f.frame_type, "numeric-long");
    assert_eq!(
        strs(&f.fields[0].values),
        vec![Some("SE3".into()), Some("SE4".into())]
    );
    assert_eq!(f.fields[1].values, Column::Int(vec![Some(0), Some(1)]));
    assert_eq!(nums(&f.fields[2].values), vec![Some(1.25), Some(2.5)]);
}

#[test]
fn frames_with_labels_from_and_labels_become_series() {
    let frames = run(
        json!({"frames": "$.result[*]", "labelsFrom": "$.metric", "labels": {"unit": "$.unit"},
               "rows": "$.values[*]", "fields": [
                {"name": "time", "path": "$[0]", "type": "time"},
                {"name": "value", "path": "$[1]", "type": "number"}]}),
        json!({"result": [
            {"metric": {"host": "a", "n": 1}, "unit": "s", "values": [[1704067260, "2"], [1704067200, "1"], [null, "9"]]},
            {"metric": {"host": "b"}, "values": []}]}),
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    let a = &frames[0];
    assert_eq!(
        a.fields[1].labels,
        [
            ("host".to_owned(), "a".to_owned()),
            ("n".to_owned(), "1".to_owned()),
            ("unit".to_owned(), "s".to_owned())
        ]
        .into()
    );
    // Sorted by time; the row without a time is dropped with a notice.
    assert_eq!(
        a.fields[0].values,
        Column::Time(vec![Some(T0), Some(T0 + 60_000_000_000)])
    );
    assert_eq!(nums(&a.fields[1].values), vec![Some(1.0), Some(2.0)]);
    assert!(
        a.notices
            .iter()
            .any(|n| n.text.contains("1 row(s) without a valid time")),
        "{:?}",
        a.notices
    );
    // An empty series still yields its (empty) frame with labels.
    assert_eq!(frames[1].rows(), 0);
    assert_eq!(frames[1].fields[1].labels["host"], "b");
}

#[test]
fn series_by_splits_long_rows() {
    let frames = run(
        json!({"rows": "$[*]", "seriesBy": ["host"], "fields": [
            {"name": "ts", "path": "$.ts", "type": "time"},
            {"name": "host", "path": "$.host"},
            {"name": "cpu", "path": "$.cpu", "type": "number"},
            {"name": "mem", "path": "$.mem", "type": "int"}]}),
        json!([
            {"ts": "2024-01-01T00:00:00Z", "host": "a", "cpu": 1, "mem": 10},
            {"ts": "2024-01-01T00:00:00Z", "host": "b", "cpu": 2, "mem": 20},
            {"ts": "2024-01-01T00:01:00Z", "host": "a", "cpu": 3, "mem": 30}]),
    )
    .unwrap();
    // (a, b) × (cpu, mem)
    assert_eq!(frames.len(), 4);
    let names: Vec<(String, String)> = frames
        .iter()
        .map(|f| (f.fields[1].name.clone(), f.fields[1].labels["host"].clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("cpu".into(), "a".into()),
            ("mem".into(), "a".into()),
            ("cpu".into(), "b".into()),
            ("mem".into(), "b".into())
        ]
    );
    assert_eq!(
        nums(&frames[0].fields[1].values),
        vec![Some(1.0), Some(3.0)]
    );
    assert_eq!(
        frames[1].fields[1].values,
        Column::Int(vec![Some(10), Some(30)])
    );
}

#[test]
fn unconvertible_values_become_null_with_one_notice_per_field() {
    let frames = run(
        json!({"rows": "$[*]", "format": "table", "fields": [
            {"name": "n", "path": "$.n", "type": "number"},
            {"name": "i", "path": "$.i", "type": "int"},
            {"name": "b", "path": "$.b", "type": "bool"}]}),
        json!([{"n": "abc", "i": 1.5, "b": "maybe"}, {"n": "NaN", "i": "9007199254740993", "b": 0}, {"n": "x", "i": null, "b": null}]),
    )
    .unwrap();
    let f = &frames[0];
    let n = nums(&f.fields[0].values);
    assert!(n[0].is_none() && n[1].unwrap().is_nan() && n[2].is_none());
    assert_eq!(
        f.fields[1].values,
        Column::Int(vec![None, Some(9_007_199_254_740_993), None])
    );
    assert_eq!(
        f.fields[2].values,
        Column::Bool(vec![None, Some(false), None])
    );
    let texts: Vec<&str> = f.notices.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[0].contains("field 'n': 2 value(s) could not be read as number")
            && texts[0].contains("\"abc\""),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("field 'i': 1 value(s)") && texts[1].contains("1.5"),
        "{texts:?}"
    );
}

#[test]
fn several_values_for_a_row_field_is_an_error_except_json() {
    let err = run(
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$.v[*]", "type": "number"}]}),
        json!([{"v": [1]}, {"v": [1, 2]}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("rule 'r'") && err.contains("field 'v'") && err.contains("2 values in row 1"),
        "{err}"
    );
    let frames = run(
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$.v[*]", "type": "json"}]}),
        json!([{"v": [1, 2]}]),
    )
    .unwrap();
    assert_eq!(
        frames[0].fields[0].values,
        Column::Json(vec![Some("[1,2]")].into())
    );
}

#[test]
fn numeric_long_dimensions_are_never_null() {
    let frames = run(
        json!({"frames": "$[*]", "labels": {"dc": "$.dc"}, "fields": [
            {"name": "name", "path": "$.name"},
            {"name": "v", "path": "$.v", "type": "number"}]}),
        json!([{"name": "a", "v": 1, "dc": "eu"}, {"name": null, "v": 2}]),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(f.frame_type, "numeric-long");
    assert_eq!(f.fields[0].name, "dc", "label columns come first");
    assert_eq!(
        strs(&f.fields[0].values),
        vec![Some("eu".into()), Some(String::new())]
    );
    assert_eq!(
        strs(&f.fields[1].values),
        vec![Some("a".into()), Some(String::new())]
    );
    assert!(!f.fields[0].nullable && !f.fields[1].nullable);
    assert!(f.fields[2].nullable);
}

#[test]
fn auto_picks_table_for_strings_next_to_time() {
    let frames = run(
        json!({"rows": "$[*]", "fields": [
            {"name": "t", "path": "$.t", "type": "time"},
            {"name": "msg", "path": "$.msg"}]}),
        json!([{"t": 1704067200, "msg": "hi"}]),
    )
    .unwrap();
    assert_eq!(frames[0].frame_type, "");
    assert_eq!(frames[0].type_version, [0, 0]);
}

#[test]
fn forced_formats_fail_clearly() {
    let err = run(
        json!({"rows": "$[*]", "format": "timeseries", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}),
        json!([{"v": 1}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("format timeseries needs exactly one time field"),
        "{err}"
    );
    let err = run(
        json!({"rows": "$[*]", "format": "numeric", "fields": [{"name": "s", "path": "$.s"}]}),
        json!([{"s": "x"}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("format numeric needs number/int fields"),
        "{err}"
    );
    let err = run(
        json!({"rows": "$[*]", "format": "logs", "fields": [{"name": "s", "path": "$.s"}]}),
        json!([{"s": "x"}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("format logs needs exactly one time field"),
        "{err}"
    );
}

#[test]
fn forced_timeseries_turns_strings_into_labels() {
    let frames = run(
        json!({"rows": "$[*]", "format": "timeseries", "fields": [
            {"name": "t", "path": "$.t", "type": "time"},
            {"name": "host", "path": "$.host"},
            {"name": "v", "path": "$.v", "type": "number"}]}),
        json!([{"t": 1704067200, "host": "a", "v": 1}, {"t": 1704067200, "host": "b", "v": 2}]),
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].fields[1].labels["host"], "b");
}

#[test]
fn timeseries_wide_joins_series_on_time() {
    let frames = run(
        json!({"frames": "$[*]", "labels": {"host": "$.host"}, "rows": "$.points[*]", "format": "timeseries-wide",
               "fields": [{"name": "time", "path": "$[0]", "type": "time", "format": "epoch_s"},
                          {"name": "value", "path": "$[1]", "type": "number"}]}),
        json!([{"host": "a", "points": [[1704067200, 1], [1704067260, 2]]},
               {"host": "b", "points": [[1704067260, 20], [1704067320, 30]]}]),
    )
    .unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.frame_type, "timeseries-wide");
    assert_eq!(f.fields.len(), 3);
    assert_eq!(
        f.fields[0].values,
        Column::Time(vec![
            Some(T0),
            Some(T0 + 60_000_000_000),
            Some(T0 + 120_000_000_000)
        ])
    );
    assert_eq!(nums(&f.fields[1].values), vec![Some(1.0), Some(2.0), None]);
    assert_eq!(f.fields[1].labels["host"], "a");
    assert_eq!(
        nums(&f.fields[2].values),
        vec![None, Some(20.0), Some(30.0)]
    );
    assert_eq!(f.fields[2].labels["host"], "b");
}

#[test]
fn numeric_wide_has_one_row_and_a_field_per_item() {
    let frames = run(
        json!({"rows": "$.q.*", "format": "numeric-wide", "fields": [
            {"name": "queue", "path": "@key"},
            {"name": "depth", "path": "$.d", "type": "int"}]}),
        json!({"q": {"a": {"d": 1}, "b": {"d": 2}}}),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(f.frame_type, "numeric-wide");
    assert_eq!(f.rows(), 1);
    assert_eq!(f.fields.len(), 2);
    assert_eq!(f.fields[1].labels["queue"], "b");
    assert_eq!(f.fields[1].values, Column::Int(vec![Some(2)]));
}

#[test]
fn logs_put_time_then_body_first() {
    let frames = run(
        json!({"rows": "$[*]", "format": "logs", "fields": [
            {"name": "level", "path": "$.level"},
            {"name": "body", "path": "$.msg"},
            {"name": "ts", "path": "$.ts", "type": "time"}]}),
        json!([{"ts": "2024-01-01T00:00:00Z", "msg": "started", "level": "info"}, {"ts": "bad", "msg": "x"}]),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(f.frame_type, "log-lines");
    let names: Vec<&str> = f.fields.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, vec!["ts", "body", "level"]);
    assert_eq!(f.rows(), 1);
    assert_eq!(f.preferred_visualisation, Some("logs"));
}

#[test]
fn zone_from_response_and_strftime() {
    let frames = run(
        json!({"fields": [
            {"name": "time", "path": "$.t[*]", "type": "time", "format": "%Y-%m-%dT%H:%M", "timezone": "${__response.tz}"},
            {"name": "v", "path": "$.v[*]", "type": "number"}]}),
        json!({"tz": "America/New_York", "t": ["2024-07-01T00:00"], "v": [1]}),
    )
    .unwrap();
    // 00:00 EDT (UTC-4) = 04:00 UTC.
    let expected = "2024-07-01T04:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_nanosecond() as i64;
    assert_eq!(
        frames[0].fields[0].values,
        Column::Time(vec![Some(expected)])
    );
    let frames = run(
        json!({"fields": [
            {"name": "time", "path": "$.t[*]", "type": "time", "timezone": "${__response.tz}"},
            {"name": "v", "path": "$.v[*]", "type": "number"}]}),
        json!({"tz": "Mars/Olympus", "t": ["2024-07-01T00:00"], "v": [1]}),
    )
    .unwrap();
    assert!(frames[0]
        .notices
        .iter()
        .any(|n| n.text.contains("using UTC")));
}

#[test]
fn labels_from_must_be_an_object() {
    let err = run(
        json!({"frames": "$[*]", "labelsFrom": "$.m", "fields": [{"name": "v", "path": "$.v", "type": "number"}]}),
        json!([{"m": [1], "v": 1}]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("'labelsFrom' $.m selected an array, expected an object"),
        "{err}"
    );
}

#[test]
fn no_frame_nodes_give_no_frames() {
    let frames = run(
        json!({"frames": "$.result[*]", "rows": "$.values[*]", "fields": [
            {"name": "t", "path": "$[0]", "type": "time"}, {"name": "v", "path": "$[1]", "type": "number"}]}),
        json!({"result": []}),
    )
    .unwrap();
    assert!(frames.is_empty());
}

#[test]
fn every_shape_encodes() {
    for format in [
        "auto",
        "table",
        "timeseries",
        "timeseries-wide",
        "numeric",
        "numeric-wide",
    ] {
        let response = if format.starts_with("numeric") {
            json!({"rows": "$[*]", "format": format, "fields": [
                {"name": "host", "path": "$.host"}, {"name": "v", "path": "$.v", "type": "number"}]})
        } else {
            json!({"rows": "$[*]", "format": format, "fields": [
                {"name": "t", "path": "$.t", "type": "time"}, {"name": "v", "path": "$.v", "type": "number"}]})
        };
        let frames = run(response, json!([{"t": 1704067200, "host": "a", "v": 1}, {"t": 1704067260, "host": "b", "v": null}])).unwrap();
        for f in frames {
            f.encode("A").unwrap_or_else(|e| panic!("{format}: {e}"));
        }
    }
}

#[test]
fn duplicate_timestamps_keep_the_last_value() {
    let frames = run(
        json!({"rows": "$[*]", "fields": [
            {"name": "t", "path": "$.t", "type": "time"},
            {"name": "v", "path": "$.v", "type": "number"}]}),
        json!([{"t": 1704067200, "v": 1}, {"t": 1704067260, "v": 2}, {"t": 1704067200, "v": 3}]),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(
        f.fields[0].values,
        Column::Time(vec![Some(T0), Some(T0 + 60_000_000_000)])
    );
    assert_eq!(nums(&f.fields[1].values), vec![Some(3.0), Some(2.0)]);
    assert!(
        f.notices
            .iter()
            .any(|n| n.text.contains("1 row(s) repeated a timestamp")),
        "{:?}",
        f.notices
    );
}

#[test]
fn numeric_rows_without_a_dimension_get_a_row_field() {
    let frames = run(
        json!({"rows": "$[*]", "fields": [{"name": "v", "path": "$", "type": "number"}]}),
        json!([5, 6]),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(f.fields[0].name, "row");
    assert_eq!(
        strs(&f.fields[0].values),
        vec![Some("0".into()), Some("1".into())]
    );
    assert!(f
        .notices
        .iter()
        .any(|n| n.text.contains("added the field 'row'")));
    // A single number needs no dimension.
    let frames = run(
        json!({"fields": [{"name": "v", "path": "$.v", "type": "number"}]}),
        json!({"v": 1}),
    )
    .unwrap();
    assert_eq!(frames[0].fields.len(), 1);
}

#[test]
fn frame_paths_and_series_across_frame_nodes() {
    // Nord Pool style: one frame node per hour, areas as dynamic keys inside.
    let frames = run(
        json!({"frames": "$.entries[*]", "rows": "$.perArea.*", "seriesBy": ["area"], "fields": [
            {"name": "time", "path": "^.start", "type": "time"},
            {"name": "area", "path": "@key"},
            {"name": "price", "path": "$", "type": "number"}]}),
        json!({"entries": [
            {"start": "2024-01-01T01:00:00Z", "perArea": {"SE3": 2.0, "SE4": 20.0}},
            {"start": "2024-01-01T00:00:00Z", "perArea": {"SE3": 1.0, "SE4": 10.0}}]}),
    )
    .unwrap();
    assert_eq!(
        frames.len(),
        2,
        "one series per area across all frame nodes"
    );
    assert_eq!(frames[0].fields[1].labels["area"], "SE3");
    assert_eq!(
        frames[0].fields[0].values,
        Column::Time(vec![Some(T0), Some(T0 + 3_600_000_000_000)])
    );
    assert_eq!(
        nums(&frames[0].fields[1].values),
        vec![Some(1.0), Some(2.0)]
    );
    assert_eq!(
        nums(&frames[1].fields[1].values),
        vec![Some(10.0), Some(20.0)]
    );
}

#[test]
fn json_fields_with_wildcards_are_always_lists() {
    let frames = run(
        json!({"rows": "$[*]", "fields": [
            {"name": "id", "path": "$.id", "type": "int"},
            {"name": "labels", "path": "$.labels[*].name", "type": "json"},
            {"name": "first", "path": "$.labels[0]", "type": "json"}]}),
        json!([{"id": 1, "labels": []}, {"id": 2, "labels": [{"name": "bug"}]}, {"id": 3, "labels": [{"name": "a"}, {"name": "b"}]}]),
    )
    .unwrap();
    let f = &frames[0];
    assert_eq!(
        f.fields[1].values,
        Column::Json(vec![Some("[]"), Some("[\"bug\"]"), Some("[\"a\",\"b\"]")].into())
    );
    assert_eq!(
        f.fields[2].values,
        Column::Json(vec![None, Some("{\"name\":\"bug\"}"), Some("{\"name\":\"a\"}")].into())
    );
}

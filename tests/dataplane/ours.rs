//! Our frames through the SSE classifier: rule + a small JSON document (our own fixtures,
//! written here) → `convert` → `Frame::encode` → `support::arrow::decode` → `classify`.
//!
//! Cases whose outcome breaks a dataplane rule are listed in [`KNOWN_GAPS`] with the fix;
//! the test prints them and fails when a listed gap is fixed (so the list stays true) or
//! when an unlisted case breaks.

use serde_json::{json, Value};

use restbridge::convert::convert;
use restbridge::rule::compile_standalone;

use crate::examples;
use crate::frame_json::decode_frames;
use crate::sse::{class, classify_report, type_of, Class, Kind, Labels, Report, Route, Sse};
use crate::support::arrow::{decode, DecodedFrame};

/// Case ids that do not meet the dataplane contract today, with what is wrong. Keep in sync
/// with the report in docs/alerting.md.
const KNOWN_GAPS: &[(&str, &str)] = &[
    // Both earlier gaps are fixed in src/convert.rs: duplicate timestamps within a series keep
    // the last value (case h), and numeric rows without a string field get a `row` dimension
    // (case i). The cases below now must conform.
];

/// Compiles `rule`, converts `doc`, encodes every frame (refId `A`) and decodes it the way
/// Grafana would.
fn frames_of(rule: &Value, doc: &Value) -> Result<Vec<DecodedFrame>, String> {
    let rule = compile_standalone(rule).map_err(|e| format!("rule: {e}"))?;
    let frames = convert(&rule, doc, None).map_err(|e| format!("convert: {e}"))?;
    frames
        .iter()
        .map(|f| f.encode("A").map(|b| decode(&b)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("encode: {e}"))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Every typed frame carries `meta.type` = `ty` and `typeVersion` `[0,1]`; time fields of
/// time series are non-nullable and carry no labels.
fn typed_as(frames: &[DecodedFrame], ty: &str) -> Result<(), String> {
    for (i, f) in frames.iter().enumerate() {
        let (t, v) = type_of(f);
        if t != ty || v != [0, 1] {
            return Err(format!(
                "frame {i}: meta.type '{t}' {v:?}, expected '{ty}' [0, 1]"
            ));
        }
        if f.ref_id != "A" {
            return Err(format!("frame {i}: refId '{}'", f.ref_id));
        }
        if ty.starts_with("timeseries") {
            for fl in f.fields.iter().filter(|fl| class(fl) == Class::Time) {
                if fl.nullable || !fl.labels.is_empty() {
                    return Err(format!(
                        "frame {i}: time field '{}' nullable={} labels={:?}",
                        fl.name, fl.nullable, fl.labels
                    ));
                }
            }
        }
    }
    Ok(())
}

fn expect_route(r: &Report, want: Route) -> Result<(), String> {
    if r.route == want {
        Ok(())
    } else {
        Err(format!("route {:?}, expected {want:?}", r.route))
    }
}

fn no_notes(r: &Report) -> Result<(), String> {
    if r.notes.is_empty() {
        Ok(())
    } else {
        Err(format!("contract notes: {:?}", r.notes))
    }
}

fn numbers(r: &Report) -> Result<Vec<(Labels, Option<f64>)>, String> {
    match &r.outcome {
        Sse::Numbers { items } => Ok(items.clone()),
        other => Err(format!("expected Numbers, got {}", other.summary())),
    }
}

fn series(r: &Report) -> Result<Vec<(String, Labels, usize)>, String> {
    match &r.outcome {
        Sse::TimeSeries { series } => Ok(series.clone()),
        other => Err(format!("expected TimeSeries, got {}", other.summary())),
    }
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

struct Case {
    id: &'static str,
    what: &'static str,
    rule: Value,
    doc: Value,
    check: fn(&[DecodedFrame], &Report) -> Result<(), String>,
}

fn prometheus_rule(id: &str) -> Value {
    json!({
        "id": id,
        "request": {"url": "/api/v1/query_range"},
        "response": {
            "frames": "$.data.result[*]",
            "labelsFrom": "$.metric",
            "rows": "$.values[*]",
            "fields": [
                {"name": "time", "path": "$[0]", "type": "time"},
                {"name": "value", "path": "$[1]", "type": "number"}
            ]
        }
    })
}

fn hosts_rule(id: &str) -> Value {
    json!({
        "id": id,
        "request": {"url": "/hosts/metrics"},
        "response": {
            "rows": "$.rows[*]",
            "seriesBy": ["host", "dc"],
            "fields": [
                {"name": "ts", "path": "$.ts", "type": "time"},
                {"name": "host", "path": "$.host", "type": "string"},
                {"name": "dc", "path": "$.dc", "type": "string"},
                {"name": "cpu", "path": "$.cpu", "type": "number"},
                {"name": "mem", "path": "$.mem", "type": "int"}
            ]
        }
    })
}

fn queues_rule(id: &str) -> Value {
    json!({
        "id": id,
        "request": {"url": "/queues"},
        "response": {
            "rows": "$.items[*]",
            "fields": [
                {"name": "queue", "path": "$.name", "type": "string"},
                {"name": "region", "path": "$.region", "type": "string"},
                {"name": "depth", "path": "$.depth", "type": "number"},
                {"name": "consumers", "path": "$.consumers", "type": "int"}
            ]
        }
    })
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "a-prometheus-matrix",
            what: "Prometheus range query (matrix): one series per result, labels from $.metric",
            rule: prometheus_rule("a"),
            doc: json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "up", "job": "api", "instance": "a:9090"},
                 "values": [[1700000000, "1"], [1700000015, "1"], [1700000030, "0"]]},
                {"metric": {"__name__": "up", "job": "api", "instance": "b:9090"},
                 "values": [[1700000000, "1"], [1700000015, "NaN"]]},
                {"metric": {"__name__": "up", "job": "db", "instance": "c:9090"},
                 "values": [[1700000000, "1"]]}
            ]}}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                expect_route(r, Route::Dataplane(Kind::TimeseriesMulti))?;
                no_notes(r)?;
                let got = series(r)?;
                let want = vec![
                    (
                        "value".to_owned(),
                        labels(&[("__name__", "up"), ("instance", "a:9090"), ("job", "api")]),
                        3,
                    ),
                    (
                        "value".to_owned(),
                        labels(&[("__name__", "up"), ("instance", "b:9090"), ("job", "api")]),
                        2,
                    ),
                    (
                        "value".to_owned(),
                        labels(&[("__name__", "up"), ("instance", "c:9090"), ("job", "db")]),
                        1,
                    ),
                ];
                same("series", got, want)
            },
        },
        Case {
            id: "b-long-rows-seriesBy",
            what: "long rows {ts, host, dc, cpu, mem} with seriesBy [host, dc]: one series per \
                   (host, dc) x (cpu, mem)",
            rule: hosts_rule("b"),
            doc: json!({"rows": [
                {"ts": "2024-01-01T00:01:00Z", "host": "a", "dc": "eu", "cpu": 0.5, "mem": 100},
                {"ts": "2024-01-01T00:00:00Z", "host": "a", "dc": "eu", "cpu": 0.4, "mem": 90},
                {"ts": "2024-01-01T00:00:00Z", "host": "b", "dc": "eu", "cpu": 0.7, "mem": 200},
                {"ts": "2024-01-01T00:00:00Z", "host": "a", "dc": "us", "cpu": 0.1, "mem": 50},
                {"ts": "2024-01-01T00:01:00Z", "host": "b", "dc": "eu", "cpu": 0.8, "mem": 210}
            ]}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                expect_route(r, Route::Dataplane(Kind::TimeseriesMulti))?;
                no_notes(r)?;
                let mut want = Vec::new();
                for (host, dc, n) in [("a", "eu", 2), ("b", "eu", 2), ("a", "us", 1)] {
                    for name in ["cpu", "mem"] {
                        want.push((name.to_owned(), labels(&[("host", host), ("dc", dc)]), n));
                    }
                }
                same("series", sorted(&series(r)?), sorted(&want))
            },
        },
        Case {
            id: "b2-format-timeseries-strings-are-labels",
            what: "the same rows with format: timeseries and no seriesBy: every string field \
                   becomes a label, same 6 series",
            rule: {
                let mut r = hosts_rule("b2");
                let resp = r["response"].as_object_mut().expect("response");
                resp.remove("seriesBy");
                resp.insert("format".into(), json!("timeseries"));
                r
            },
            doc: json!({"rows": [
                {"ts": 1704067260, "host": "a", "dc": "eu", "cpu": 0.5, "mem": 100},
                {"ts": 1704067200, "host": "a", "dc": "eu", "cpu": 0.4, "mem": 90},
                {"ts": 1704067200, "host": "b", "dc": "eu", "cpu": 0.7, "mem": 200},
                {"ts": 1704067200, "host": "a", "dc": "us", "cpu": 0.1, "mem": 50},
                {"ts": 1704067260, "host": "b", "dc": "eu", "cpu": 0.8, "mem": 210}
            ]}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                expect_route(r, Route::Dataplane(Kind::TimeseriesMulti))?;
                no_notes(r)?;
                same("series", series(r)?.len(), 6)
            },
        },
        Case {
            id: "b3-null-seriesBy-value",
            what: "a seriesBy field that is null in some rows: label value \"\" (labels are \
                   field metadata, never null)",
            rule: hosts_rule("b3"),
            doc: json!({"rows": [
                {"ts": 1704067200, "host": null, "dc": "eu", "cpu": 0.5, "mem": 1},
                {"ts": 1704067200, "host": "a", "dc": "eu", "cpu": 0.6, "mem": 2}
            ]}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                no_notes(r)?;
                let got = sorted(&series(r)?);
                let mut want = Vec::new();
                for host in ["", "a"] {
                    for name in ["cpu", "mem"] {
                        want.push((name.to_owned(), labels(&[("host", host), ("dc", "eu")]), 1));
                    }
                }
                same("series", got, sorted(&want))
            },
        },
        Case {
            id: "c-numeric-long-dimensions",
            what: "instant values per item with string dimensions (queue, region): numeric-long",
            rule: queues_rule("c"),
            doc: json!({"items": [
                {"name": "orders", "region": "eu", "depth": 12, "consumers": 3},
                {"name": "orders", "region": "us", "depth": 4, "consumers": 2},
                {"name": "billing", "region": "eu", "depth": 0, "consumers": 1}
            ]}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                same("frames", frames.len(), 1)?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                no_notes(r)?;
                let l = |q, g| labels(&[("queue", q), ("region", g)]);
                let want = vec![
                    (l("orders", "eu"), Some(12.0)),
                    (l("orders", "eu"), Some(3.0)),
                    (l("orders", "us"), Some(4.0)),
                    (l("orders", "us"), Some(2.0)),
                    (l("billing", "eu"), Some(0.0)),
                    (l("billing", "eu"), Some(1.0)),
                ];
                same("numbers", numbers(r)?, want)
            },
        },
        Case {
            id: "c2-single-instant-value",
            what: "one instant value, no dimension (column mode, one row): numeric-long, 1 item",
            rule: json!({"id": "c2", "request": {"url": "/count"}, "response": {
                "fields": [{"name": "count", "path": "$.count", "type": "int"}]}}),
            doc: json!({"count": 42}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                no_notes(r)?;
                same("numbers", numbers(r)?, vec![(Labels::new(), Some(42.0))])
            },
        },
        Case {
            id: "c3-prometheus-vector",
            what: "Prometheus instant query (vector): labelsFrom + one value per result, \
                   numeric-long with the label columns",
            rule: json!({"id": "c3", "request": {"url": "/api/v1/query"}, "response": {
                "frames": "$.data.result[*]",
                "labelsFrom": "$.metric",
                "fields": [{"name": "value", "path": "$.value[1]", "type": "number"}]}}),
            doc: json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"job": "api", "instance": "a"}, "value": [1700000000, "0.5"]},
                {"metric": {"job": "db", "instance": "b"}, "value": [1700000000, "0.25"]}
            ]}}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                no_notes(r)?;
                let want = vec![
                    (labels(&[("instance", "a"), ("job", "api")]), Some(0.5)),
                    (labels(&[("instance", "b"), ("job", "db")]), Some(0.25)),
                ];
                same("numbers", numbers(r)?, want)
            },
        },
        Case {
            id: "d-object-members-key",
            what: "rows from an object's members, dimension from @key: numeric-long",
            rule: json!({"id": "d", "request": {"url": "/stats"}, "response": {
            "rows": "$.queues.*",
            "fields": [
                {"name": "queue", "path": "@key", "type": "string"},
                {"name": "depth", "path": "$.depth", "type": "number"}
            ]}}),
            doc: json!({"queues": {"orders": {"depth": 5}, "billing": {"depth": 2}}}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                no_notes(r)?;
                let want = vec![
                    (labels(&[("queue", "orders")]), Some(5.0)),
                    (labels(&[("queue", "billing")]), Some(2.0)),
                ];
                same("numbers", sorted_items(numbers(r)?), sorted_items(want))
            },
        },
        Case {
            id: "e-table-with-bool",
            what: "time + string + bool + number: a table (untyped); NOT alertable, by design",
            rule: json!({"id": "e", "request": {"url": "/checks"}, "response": {
            "rows": "$.checks[*]",
            "fields": [
                {"name": "ts", "path": "$.ts", "type": "time"},
                {"name": "host", "path": "$.host", "type": "string"},
                {"name": "up", "path": "$.up", "type": "bool"},
                {"name": "latency", "path": "$.ms", "type": "number"}
            ]}}),
            doc: json!({"checks": [
                {"ts": 1700000000, "host": "a", "up": true, "ms": 12},
                {"ts": 1700000000, "host": "b", "up": false, "ms": null}
            ]}),
            check: |frames, r| {
                same("frames", frames.len(), 1)?;
                same("meta.type", type_of(&frames[0]), ("", [0, 0]))?;
                expect_route(r, Route::Legacy)?;
                match &r.outcome {
                    Sse::Error(e) if e.contains("input data must be a wide series") => Ok(()),
                    other => Err(format!("expected the wide-series error, got {other:?}")),
                }
            },
        },
        Case {
            id: "e3-string-not-in-seriesBy",
            what: "time + number + a string field NOT listed in seriesBy: auto picks table; NOT \
                   alertable until the string is put in seriesBy (or format: timeseries)",
            rule: {
                let mut r = hosts_rule("e3");
                r["response"]["seriesBy"] = json!(["host"]);
                r
            },
            doc: json!({"rows": [
                {"ts": 1704067200, "host": "a", "dc": "eu", "cpu": 0.5, "mem": 1}
            ]}),
            check: |frames, r| {
                same("meta.type", type_of(&frames[0]), ("", [0, 0]))?;
                expect_route(r, Route::Legacy)?;
                match &r.outcome {
                    Sse::Error(e) if e.contains("input data must be a wide series") => Ok(()),
                    other => Err(format!("expected the wide-series error, got {other:?}")),
                }
            },
        },
        Case {
            id: "e2-logs",
            what: "format logs (log-lines): NOT alertable, by design",
            rule: json!({"id": "e2", "request": {"url": "/logs"}, "response": {
            "rows": "$.lines[*]", "format": "logs",
            "fields": [
                {"name": "ts", "path": "$.ts", "type": "time"},
                {"name": "body", "path": "$.msg", "type": "string"},
                {"name": "level", "path": "$.level", "type": "string"}
            ]}}),
            doc: json!({"lines": [{"ts": 1700000000, "msg": "hello", "level": "info"}]}),
            check: |frames, r| {
                same("meta.type", type_of(&frames[0]).0, "log-lines")?;
                expect_route(r, Route::Legacy)?;
                match &r.outcome {
                    Sse::Error(e) if e.contains("input data must be a wide series") => Ok(()),
                    other => Err(format!("expected the wide-series error, got {other:?}")),
                }
            },
        },
        Case {
            id: "f-zero-results",
            what: "Prometheus matrix with zero results: zero frames, NoData",
            rule: prometheus_rule("f"),
            doc: json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
            check: |frames, r| {
                same("frames", frames.len(), 0)?;
                same("outcome", &r.outcome, &Sse::NoData)
            },
        },
        Case {
            id: "f2-zero-rows-numeric",
            what: "numeric rule, zero rows: one numeric-long frame with 0 rows, NoData",
            rule: queues_rule("f2"),
            doc: json!({"items": []}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                same("outcome", &r.outcome, &Sse::NoData)
            },
        },
        Case {
            id: "f3-zero-rows-timeseries",
            what: "time-series rule, zero rows in a series node: an empty item (series of 0 \
                   points), not NoData",
            rule: prometheus_rule("f3"),
            doc: json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"job": "api"}, "values": []}
            ]}}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                no_notes(r)?;
                same(
                    "series",
                    series(r)?,
                    vec![("value".to_owned(), labels(&[("job", "api")]), 0)],
                )
            },
        },
        Case {
            id: "g-null-dimension",
            what: "numeric-long with JSON-null dimensions (row field and missing node label): \
                   classified, null dimensions read as \"\"",
            rule: json!({"id": "g", "request": {"url": "/clusters"}, "response": {
            "frames": "$.clusters[*]",
            "labels": {"cluster": "$.name"},
            "rows": "$.queues[*]",
            "fields": [
                {"name": "queue", "path": "$.name", "type": "string"},
                {"name": "depth", "path": "$.depth", "type": "number"}
            ]}}),
            doc: json!({"clusters": [
                {"name": "c1", "queues": [{"name": "orders", "depth": 1},
                                          {"name": null, "depth": 2}]},
                {"name": null, "queues": [{"name": "orders", "depth": 3}]}
            ]}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                expect_route(r, Route::Dataplane(Kind::NumericLong))?;
                no_notes(r)?;
                let want = vec![
                    (labels(&[("cluster", "c1"), ("queue", "orders")]), Some(1.0)),
                    (labels(&[("cluster", "c1"), ("queue", "")]), Some(2.0)),
                    (labels(&[("cluster", ""), ("queue", "orders")]), Some(3.0)),
                ];
                same("numbers", numbers(r)?, want)
            },
        },
        Case {
            id: "h-duplicate-timestamps",
            what: "long rows repeating a timestamp for one (host, dc): timeseries-multi frames \
                   must not hold duplicate timestamps",
            rule: hosts_rule("h"),
            doc: json!({"rows": [
                {"ts": "2024-01-01T00:00:00Z", "host": "a", "dc": "eu", "cpu": 0.5, "mem": 1},
                {"ts": "2024-01-01T00:00:00Z", "host": "a", "dc": "eu", "cpu": 0.6, "mem": 2},
                {"ts": "2024-01-01T00:01:00Z", "host": "a", "dc": "eu", "cpu": 0.7, "mem": 3}
            ]}),
            check: |frames, r| {
                typed_as(frames, "timeseries-multi")?;
                expect_route(r, Route::Dataplane(Kind::TimeseriesMulti))?;
                no_notes(r)?;
                same("series", series(r)?.len(), 2)
            },
        },
        Case {
            id: "i-numeric-rows-without-dimension",
            what: "several instant values and no string field: numeric-long needs a string \
                   dimension when there is more than one row",
            rule: json!({"id": "i", "request": {"url": "/values"}, "response": {
                "rows": "$.values[*]",
                "fields": [{"name": "v", "path": "$", "type": "number"}]}}),
            doc: json!({"values": [1, 2, 3]}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                no_notes(r)?;
                same("items", numbers(r)?.len(), 3)
            },
        },
        Case {
            id: "i2-index-as-dimension",
            what: "workaround for i: `@index` as a string field gives each row a dimension",
            rule: json!({"id": "i2", "request": {"url": "/values"}, "response": {
            "rows": "$.values[*]",
            "fields": [
                {"name": "row", "path": "@index", "type": "string"},
                {"name": "v", "path": "$", "type": "number"}
            ]}}),
            doc: json!({"values": [1, 2, 3]}),
            check: |frames, r| {
                typed_as(frames, "numeric-long")?;
                no_notes(r)?;
                let want = (0..3)
                    .map(|i| (labels(&[("row", &i.to_string())]), Some(f64::from(i + 1))))
                    .collect();
                same("numbers", numbers(r)?, want)
            },
        },
        Case {
            id: "j-duplicate-numeric-items",
            what: "numeric-long rows sharing the same dimensions: duplicate items (data-dependent)",
            rule: queues_rule("j"),
            doc: json!({"items": [
                {"name": "orders", "region": "eu", "depth": 1, "consumers": 1},
                {"name": "orders", "region": "eu", "depth": 2, "consumers": 1}
            ]}),
            check: |_, r| {
                // The upstream data itself repeats an identity; a reader only warns. We
                // document it (docs/alerting.md) rather than invent a dimension.
                if r.notes.iter().any(|n| n.contains("duplicate item")) {
                    Ok(())
                } else {
                    Err(format!("expected a duplicate-item note, got {:?}", r.notes))
                }
            },
        },
    ]
}

fn sorted_items(mut v: Vec<(Labels, Option<f64>)>) -> Vec<(Labels, Option<f64>)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn our_frames_are_alert_ready() {
    let mut failures = Vec::new();
    let mut gaps_seen = Vec::new();
    let cases = cases();
    for id in KNOWN_GAPS.iter().map(|(id, _)| id) {
        assert!(
            cases.iter().any(|c| c.id == *id),
            "KNOWN_GAPS names an unknown case {id}"
        );
    }
    for case in &cases {
        let result = frames_of(&case.rule, &case.doc).and_then(|frames| {
            let report = classify_report(&frames);
            let summary = format!("{:?} {}", report.route, report.outcome.summary());
            (case.check)(&frames, &report).map(|()| summary)
        });
        let gap = KNOWN_GAPS.iter().find(|(id, _)| *id == case.id);
        match (result, gap) {
            (Ok(s), None) => println!("  ok   {}: {s} — {}", case.id, case.what),
            (Ok(s), Some(_)) => failures.push(format!(
                "{}: listed in KNOWN_GAPS but now conforms ({s}); remove it from the list",
                case.id
            )),
            (Err(e), Some((_, why))) => {
                println!("  GAP  {}: {e} — {}", case.id, case.what);
                gaps_seen.push(format!("{}: {why}", case.id));
            }
            (Err(e), None) => failures.push(format!("{}: {e} — {}", case.id, case.what)),
        }
    }
    println!("KNOWN_GAPS ({}):", gaps_seen.len());
    for g in &gaps_seen {
        println!("  - {g}");
    }
    println!(
        "our frames: {} cases, {} conform, {} known gaps, {} failures",
        cases.len(),
        cases.len() - gaps_seen.len() - failures.len(),
        gaps_seen.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// Abstract field-class sequence of a frame, for pattern comparisons.
fn pattern(f: &DecodedFrame) -> Vec<Class> {
    f.fields.iter().map(class).collect()
}

/// `string* number+`
fn is_strings_then_numbers(p: &[Class]) -> bool {
    let first_num = p
        .iter()
        .position(|c| *c == Class::Number)
        .unwrap_or(p.len());
    first_num < p.len()
        && p[..first_num].iter().all(|c| *c == Class::String)
        && p[first_num..].iter().all(|c| *c == Class::Number)
}

/// Our typed frames side by side with the dataplane example of the same kind.
#[test]
fn our_typed_frames_match_the_examples() {
    let Some(ex_multi) = examples::load(
        "timeseries/multi/v0.1/basic_valid/timeseries-multi_two-items-by-dimension-unaligned-time.json",
    ) else {
        return;
    };
    let Some(ex_long) = examples::load(
        "numeric/long/v0.1/basic_valid/numeric-long_four-items-by-name-and-dimension.json",
    ) else {
        return;
    };
    let (ex_multi, _) = decode_frames(&ex_multi).expect("example decodes");
    let (ex_long, _) = decode_frames(&ex_long).expect("example decodes");
    let all = cases();
    let by_id = |id: &str| {
        let c = all.iter().find(|c| c.id == id).expect("case");
        frames_of(&c.rule, &c.doc).expect("our frames")
    };

    // timeseries-multi: every frame = [time, number], value labelled, time unlabelled.
    for id in ["a-prometheus-matrix", "b-long-rows-seriesBy"] {
        let ours = by_id(id);
        for (name, frames) in [("example", &ex_multi), (id, &ours)] {
            for (i, f) in frames.iter().enumerate() {
                assert_eq!(type_of(f), ("timeseries-multi", [0, 1]), "{name} frame {i}");
                assert_eq!(
                    pattern(f),
                    vec![Class::Time, Class::Number],
                    "{name} frame {i}: time then numeric"
                );
                assert!(
                    f.fields[0].labels.is_empty(),
                    "{name} frame {i}: time labels"
                );
                assert!(
                    !f.fields[1].labels.is_empty(),
                    "{name} frame {i}: value labels"
                );
            }
        }
        println!(
            "  ok   {id}: {} timeseries-multi frames, pattern [time, number] like the example",
            ours.len()
        );
    }

    // numeric-long: one frame, string* + number+; the example's pattern is the same.
    for id in [
        "c-numeric-long-dimensions",
        "c3-prometheus-vector",
        "d-object-members-key",
        "g-null-dimension",
    ] {
        let ours = by_id(id);
        for (name, frames) in [("example", &ex_long), (id, &ours)] {
            assert_eq!(frames.len(), 1, "{name}: one frame");
            let f = &frames[0];
            assert_eq!(type_of(f), ("numeric-long", [0, 1]), "{name}");
            assert!(
                is_strings_then_numbers(&pattern(f)),
                "{name}: pattern {:?} is not string* + numeric+",
                pattern(f)
            );
            assert!(
                f.fields.iter().all(|x| x.labels.is_empty()),
                "{name}: numeric-long uses columns, not labels"
            );
            for x in f.fields.iter().filter(|x| class(x) == Class::String) {
                assert!(
                    x.values.iter().all(Value::is_string),
                    "{name}: null in dimension '{}'",
                    x.name
                );
            }
        }
        println!(
            "  ok   {id}: numeric-long pattern {:?} like the example",
            pattern(&ours[0])
        );
    }
}
